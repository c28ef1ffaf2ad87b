"""The transfer benchmark's run: every (dataset, backbone, protocol) not yet in
``OUT/results.csv``, measured and appended one at a time."""
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from .data import Source, dataset_label, load_dataset_splits
from .model import build_model, measure_cost
from .protocols import NonFiniteError, finetune, linear_probe, progress
from .results import (CSV_FIELDS, append_row, check_compatible, expected_settings, read_rows,
                      write_reports)


def run_benchmark(*, datasets: Sequence[str] = ('digits',), backbones: Sequence[str],
                  protocols: Sequence[str] = ('linear', 'finetune'), out: str,
                  data_root: str = 'data', epochs: int = 10, lr: float = 0.05,
                  batch_size: int = 64, img_size: int = 32,
                  weights: Optional[Dict[str, str]] = None, seed: int = 0,
                  max_train: Optional[int] = None, max_test: Optional[int] = None,
                  workers: int = 0, threads: Optional[int] = None, device: str = 'cpu',
                  latency_threads: int = 1, latency_runs: int = 30) -> List[dict]:
    """Run the transfer benchmark (protocol: docs/transfer.md) and return every row
    of ``OUT/results.csv``; ``OUT/results.md`` and ``OUT/accuracy_vs_macs.png`` are
    rewritten after each new row.

    Args:
        datasets (Sequence[str]): 'digits', a name of ``MMPRETRAIN_DATASETS`` or an
            image folder (``NAME=PATH``, a folder under ``data_root``, or a path).
        backbones (Sequence[str]): keys of ``BACKBONES``.
        protocols (Sequence[str]): 'linear' and/or 'finetune'.
        out (str): the output folder; rows already there are kept (resume).
        data_root (str): the folder holding the datasets.
        epochs (int): fine-tuning epochs.
        lr (float): fine-tuning peak learning rate.
        batch_size (int): fine-tuning batch.
        img_size (int): input side for every backbone.
        weights (dict, optional): backbone name -> ImageNet weights file.
        seed (int): seeds initialisation, data order and augmentation.
        max_train (int, optional): a fixed random subset of the train split.
        max_test (int, optional): a fixed random subset of the test split.
        workers (int): data loader workers.
        threads (int, optional): torch threads for training and extraction.
        device (str): where features are extracted and models fine-tuned.
        latency_threads (int): CPU threads of the latency measurement.
        latency_runs (int): timed forwards of the latency measurement.
    """
    weights = weights or {}
    if threads:
        torch.set_num_threads(threads)
    # the folder is made by the first file written into it, so that an early error
    # (a foreign results.csv, a missing dataset) leaves nothing behind
    csv_path = osp.join(out, 'results.csv')
    done = {(r['dataset'], r['backbone'], r['protocol']): r
            for r in read_rows(csv_path, CSV_FIELDS)}
    common = dict(img_size=img_size, epochs=epochs, lr=lr, seed=seed, weights=weights)

    tasks = [(d, b, p) for d in datasets for b in backbones for p in protocols]
    todo = [t for t in tasks if (dataset_label(t[0]), t[1], t[2]) not in done]
    for d, b, p in tasks:  # refuse to mix results obtained with other settings
        check_compatible(done, dataset_label(d), b, p,
                         expected_settings(protocol=p, backbone=b, **common), csv_path)
    print(f'{len(tasks)} (dataset, backbone, protocol) runs, {len(tasks) - len(todo)} '
          f'already in {csv_path}, {len(todo)} to do')
    overall = progress(total=len(todo), desc='benchmark')
    splits: Dict[str, Tuple[Source, Source]] = {}
    for dataset in datasets:
        label = dataset_label(dataset)
        for backbone in backbones:
            wanted = [p for p in protocols if (label, backbone, p) not in done]
            if not wanted:
                continue
            if dataset not in splits:
                train, test, where = load_dataset_splits(dataset, data_root)
                splits[dataset] = (train.subset(max_train, seed),
                                   test.subset(max_test, seed))
                overall.write(f'{label}: {len(splits[dataset][0])} train / '
                              f'{len(splits[dataset][1])} test images, '
                              f'{train.num_classes} classes ({where})')
            train, test = splits[dataset]
            sizes = dict(n_train=len(train), n_test=len(test))
            for p in protocols:
                check_compatible(done, label, backbone, p,
                                 expected_settings(protocol=p, backbone=backbone,
                                                   **common, **sizes), csv_path)
            for protocol in wanted:
                overall.set_description(f'{label} / {backbone} / {protocol}')
                model, init = build_model(backbone, num_classes=train.num_classes,
                                          img_size=img_size, seed=seed, weights=weights)
                params, macs, latency = measure_cost(
                    model, img_size=img_size, threads=latency_threads, runs=latency_runs)
                settings = expected_settings(protocol=protocol, backbone=backbone,
                                             **common, **sizes)
                start = time.time()
                try:
                    if protocol == 'linear':
                        top1 = linear_probe(model, train, test, img_size=img_size,
                                            seed=seed, workers=workers, device=device)
                    else:
                        top1 = finetune(model, train, test, img_size=img_size,
                                        epochs=epochs, lr=lr, batch_size=batch_size,
                                        seed=seed, workers=workers, device=device,
                                        flip=label != 'digits')
                except NonFiniteError as exc:  # nothing is written for this row
                    raise SystemExit(f'error: {label} / {backbone} / {protocol} (init '
                                     f'{init}): {exc}') from exc
                row = dict(dataset=label, backbone=backbone, protocol=protocol,
                           top1=f'{top1:.4f}', params=params, macs=macs,
                           latency_ms=f'{latency:.2f}', latency_threads=latency_threads,
                           num_classes=train.num_classes,
                           seconds=f'{time.time() - start:.1f}',
                           finished=time.strftime('%Y-%m-%d %H:%M:%S'), **settings)
                append_row(csv_path, row)
                done[(label, backbone, protocol)] = {k: str(v) for k, v in row.items()}
                write_reports(csv_path, out)
                overall.write(f'{label} / {backbone} / {protocol}: top-1 '
                              f'{100 * top1:.2f}% (init {init}, {macs / 1e6:.1f} M MACs, '
                              f'{latency:.1f} ms)')
                overall.update()
    overall.close()
    rows = write_reports(csv_path, out)
    print(f'wrote {csv_path}, {osp.join(out, "results.md")} and '
          f'{osp.join(out, "accuracy_vs_macs.png")}')
    with open(osp.join(out, 'results.md')) as f:
        print(f.read())
    return rows
