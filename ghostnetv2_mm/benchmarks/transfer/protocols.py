"""The transfer benchmark's two protocols on a :class:`~.model.Classifier`: the linear
probe (frozen backbone, logistic regression on pooled features) and fine-tuning
(every weight trained). See docs/transfer.md for the protocol and its reasons."""
import math
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from .data import Source, make_loader

PROTOCOLS = ('linear', 'finetune')
GRAD_CLIP_NORM = 1.0  # fine-tuning: global gradient norm clipped to this


class NonFiniteError(FloatingPointError):
    """A NaN or infinity where the protocol needs finite numbers (features, loss)."""


def progress(iterable=None, **kwargs):
    from tqdm.auto import tqdm
    return tqdm(iterable, dynamic_ncols=True, **kwargs)


@torch.no_grad()
def extract(model, loader, desc: str, device='cpu'):
    """Pooled features (float64 array) and labels of every batch of ``loader``."""
    model.eval()
    feats, labels = [], []
    for x, y in progress(loader, desc=desc, leave=False):
        feats.append(model.features(x.to(device)).cpu())
        labels.append(y)
    feats = torch.cat(feats).numpy().astype(np.float64)
    # A NaN/inf feature means a broken backbone or weights: stop, rather than let a
    # replacement value turn it into a plausible accuracy.
    bad = np.flatnonzero(~np.isfinite(feats).all(axis=1))
    if len(bad):
        raise NonFiniteError(
            f'{desc}: {len(bad)} of {len(feats)} images give non-finite (NaN or inf) '
            f'pooled features, the first at image {int(bad[0])} of the split')
    return feats, torch.cat(labels).numpy()


def linear_probe(model, train: Source, test: Source, *, img_size: int, seed: int = 0,
                 workers: int = 0, device='cpu', fold_head: bool = False) -> float:
    """The linear-probe protocol; returns the top-1 accuracy on ``test``.

    The backbone stays frozen in eval mode; pooled features of both splits are
    extracted once, standardised with the train statistics, and a multinomial
    logistic regression (scikit-learn, L-BFGS, C=1.0, max_iter=1000) is fitted on
    train and scored on test.

    Args:
        model (Classifier): the model; only its backbone is used, unless ``fold_head``.
        train (Source): the split the regression is fitted on.
        test (Source): the split it is scored on.
        img_size (int): the input side.
        seed (int): the regression's random state.
        workers (int): data loader workers.
        device: where the features are extracted.
        fold_head (bool): also write the fitted regression (standardisation
            included) into ``model.fc``, so that the network outputs its logits.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    kw = dict(img_size=img_size, batch_size=128, seed=seed, workers=workers)
    model.to(device)
    x_train, y_train = extract(model, make_loader(train, **kw), 'features (train)', device)
    x_test, y_test = extract(model, make_loader(test, **kw), 'features (test)', device)
    scaler = StandardScaler().fit(x_train)
    clf = LogisticRegression(C=1.0, max_iter=1000, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', ConvergenceWarning)
        clf.fit(scaler.transform(x_train), y_train)
    if fold_head:
        weight = clf.coef_ / scaler.scale_
        bias = clf.intercept_ - weight @ scaler.mean_
        with torch.no_grad():
            model.fc.weight.copy_(torch.from_numpy(weight).float())
            model.fc.bias.copy_(torch.from_numpy(bias).float())
    return float((clf.predict(scaler.transform(x_test)) == y_test).mean())


def finetune(model, train: Source, test: Source, *, img_size: int, epochs: int,
             lr: float, batch_size: int = 64, seed: int = 0, workers: int = 0,
             device='cpu', flip: bool = True) -> float:
    """The fine-tuning protocol; returns the top-1 accuracy of the final weights.

    SGD (momentum 0.9, Nesterov), weight decay 1e-4 (none on BN and biases), global
    gradient norm clipped to ``GRAD_CLIP_NORM``, linear warm-up over the first epoch
    then cosine decay to 0; BN in train mode; pad-and-crop augmentation.

    Args:
        model (Classifier): the model, trained in place.
        train (Source): the training split.
        test (Source): the split scored at the end.
        img_size (int): the input side.
        epochs (int): passes over ``train``.
        lr (float): the peak learning rate.
        batch_size (int): training batch.
        seed (int): seeds the data order and the augmentation.
        workers (int): data loader workers.
        device: where to train.
        flip (bool): random horizontal flips (not for digits).
    """
    torch.manual_seed(seed)
    model.to(device)
    loader = make_loader(train, img_size=img_size, augment=True, flip=flip,
                         batch_size=batch_size, shuffle=True, seed=seed, workers=workers)
    decay, no_decay = [], []
    for p_name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or p_name.endswith('.bias') else decay).append(p)
    optimizer = torch.optim.SGD([dict(params=decay, weight_decay=1e-4),
                                 dict(params=no_decay, weight_decay=0.0)],
                                lr=lr, momentum=0.9, nesterov=True)
    per_epoch = len(loader)
    total = max(1, per_epoch * epochs)
    warmup = min(per_epoch, total)

    def lr_factor(step):
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * t))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    bar = progress(total=total, desc='fine-tune', leave=False)
    for epoch in range(epochs):
        model.train()
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            loss = F.cross_entropy(model(x), y)
            if not torch.isfinite(loss):
                raise NonFiniteError(f'fine-tune: the training loss is {loss.item()} at '
                                     f'step {bar.n + 1} (epoch {epoch + 1})')
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            # From random initialisation, SGD at these learning rates blows up after
            # a few dozen steps (loss back above chance); clipping the global gradient
            # norm to 1.0 keeps it stable (digits, 5 epochs: 94.2% vs 54.0% unclipped).
            torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP_NORM)
            optimizer.step()
            scheduler.step()
            bar.set_postfix(epoch=f'{epoch + 1}/{epochs}', loss=f'{loss.item():.3f}')
            bar.update()
    bar.close()
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in make_loader(test, img_size=img_size, batch_size=128, seed=seed,
                                workers=workers):
            correct += int((model(x.to(device)).argmax(1).cpu() == y).sum())
    return correct / len(test)
