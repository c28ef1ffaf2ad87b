"""One catalogue of networks for every benchmark tool: one name per network in every
tool's --help and arguments, old spellings refused with the new name, one top-1 and
one weights file per network (ghostnetv2_mm/benchmarks/catalogue.py)."""
import contextlib
import io
import os.path as osp
import re

import pytest
import yaml

from ghostnetv2_mm.benchmarks.catalogue import NETWORKS, OLD_NAMES, resolve
from ghostnetv2_mm.errors import UserError

from helpers import load_tool

# every benchmark tool that takes network names, and the option that takes them
TOOLS = {'analysis/benchmark': '--models', 'analysis/onnx_profile': '--peers',
         'transfer_benchmark': '--backbones', 'downstream_benchmark': '--backbones'}


def help_text(tool):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        load_tool(tool).parse_args(['--help'])
    return out.getvalue()


def listed_networks(text):
    """The names after 'networks (...):' in a --help text (argparse may wrap lines,
    also at a hyphen)."""
    tail = text[text.index('networks (one catalogue'):]
    names = re.sub(r'\s+', '', tail.split('):', 1)[1])
    return names.split(',')


@pytest.mark.parametrize('tool', sorted(TOOLS))
def test_every_benchmark_tool_lists_the_same_network_names(tool):
    assert listed_networks(help_text(tool)) == list(NETWORKS)


@pytest.mark.parametrize('tool', sorted(TOOLS))
def test_every_benchmark_tool_refuses_an_old_spelling_naming_the_new_one(tool, capsys):
    argv = {'analysis/benchmark': ['--models', 'mobilenet_v3_large'],
            'analysis/onnx_profile': ['--peers', 'mobilenet_v3_large'],
            'transfer_benchmark': ['--backbones', 'mobilenet_v3_large'],
            'downstream_benchmark': ['configs/demo/retinanet_ghostnetv2_toyshapes.py',
                                     '--backbones', 'mobilenet_v3_large']}[tool]
    with pytest.raises(UserError) as info:
        load_tool(tool).parse_args(argv)
    assert info.value.status == 2
    message = str(info.value)
    assert TOOLS[tool] in message and "'mobilenet_v3_large'" in message
    # the speed tool lists its rows (choices); the others name the new spelling
    assert "'mobilenetv3-large'" in message or 'mobilenetv3-large,' in message


def test_old_spellings_name_a_network_of_the_catalogue():
    assert set(OLD_NAMES.values()) <= set(NETWORKS)
    for old, new in OLD_NAMES.items():
        with pytest.raises(UserError, match=f"is now called '{new}'"):
            resolve(old)


def test_a_bare_family_name_is_its_width():
    assert resolve('ghostnetv2').name == 'ghostnetv2-1.0x'
    assert resolve('ghostnetv2', width='1.3x').top1 == 76.9
    with pytest.raises(UserError, match='unknown network'):
        resolve('ghostnet', width='1.6x')  # no official V1 1.6x weights


def test_speed_rows_take_the_top1_of_their_networks_width():
    from ghostnetv2_mm.benchmarks.speed import PEERS, peer_top1
    for arch, top1 in (('1.0x', 75.3), ('1.3x', 76.9), ('1.6x', 77.8)):
        for row in ('ghostnetv2', 'ghostnetv2-deploy', 'ghostnetv2-onnx', 'timm-ghostnetv2'):
            assert peer_top1(row, arch) == top1, (row, arch)
    assert peer_top1('ghostnetv2-onnx-int8', '1.0x') is None  # INT8: not the published
    assert peer_top1('mobilenetv3-large', '1.0x') == NETWORKS['mobilenetv3-large'].top1
    assert all(peer_top1(row, '1.0x') is not None for row in PEERS if 'int8' not in row)


def test_downstream_and_transfer_read_the_catalogue():
    from ghostnetv2_mm.benchmarks.downstream import BACKBONES as DOWNSTREAM
    from ghostnetv2_mm.benchmarks.transfer import BACKBONES as TRANSFER
    assert set(TRANSFER) == set(NETWORKS)
    for name, entry in DOWNSTREAM.items():
        network = NETWORKS[name]
        assert (entry.weights, entry.top1) == (network.weights, network.top1)


def test_the_toolkit_weights_and_top1_are_those_of_the_mmpretrain_metafiles():
    import mmpretrain
    root = osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'configs')
    models = {}
    for folder in ('mobilenet_v2', 'mobilenet_v3', 'resnet'):
        with open(osp.join(root, folder, 'metafile.yml')) as f:
            models.update({m['Name']: m for m in yaml.safe_load(f)['Models']})
    checked = 0
    for network in NETWORKS.values():
        if not network.weights_source.startswith('mmpretrain metafile: '):
            continue
        entry = models[network.weights_source.split(': ')[1]]
        assert entry['Weights'] == network.weights, network.name
        top1 = entry['Results'][0]['Metrics']['Top 1 Accuracy']
        assert top1 == pytest.approx(network.top1), network.name
        checked += 1
    assert checked == 3
