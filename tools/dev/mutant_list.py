"""The mutants of ``tools/dev/mutants.py``: small, wrong changes to the model and the
checkpoint code, each with the tests that must notice it.

Each entry: ``name``; ``file`` (relative to the repository root); ``old`` (text that
must occur exactly once in the file) and ``new`` (what it becomes); ``why`` (what is
wrong about it, printed if it survives); ``tests`` (pytest arguments: node ids, or a
file with ``-k``). Keep each selection small: it runs with ``-x`` once per mutant,
and every mutant costs a pytest start (10-30 s of imports) on top of its tests.
"""

BLOCKS = 'ghostnetv2_mm/models/blocks.py'
BACKBONE = 'ghostnetv2_mm/models/backbone.py'
DEPLOY = 'ghostnetv2_mm/models/deploy.py'
UTILS = 'ghostnetv2_mm/models/utils.py'
LAYOUTS = 'ghostnetv2_mm/checkpoint/layouts.py'
ADAPTER = 'ghostnetv2_mm/checkpoint/adapter.py'

# timm's ghostnetv2_100 (the reference's numerics and key names) against ours,
# every stage and the logits, on a non-square 256x320 input.
PARITY = ['tests/test_parity.py::test_every_stage_and_the_logits_match_the_reference'
          '[size1-1.0x]']
DEPLOY_EQUALS_EVAL = ['tests/test_deploy.py::test_deploy_equals_eval']
BACKBONE_TESTS = 'tests/test_backbone.py'


def _k(expression):
    return [BACKBONE_TESTS, '-k', expression]


MUTANTS = [
    # -------------------------------------------------------------- DFC attention
    dict(name='dfc-max-pool', file=BLOCKS,
         old='            return F.avg_pool2d(x, kernel_size=kernel, stride=kernel)',
         new='            return F.max_pool2d(x, kernel_size=kernel, stride=kernel)',
         why='the DFC branch max-pools instead of average-pooling',
         tests=PARITY),
    dict(name='dfc-pool-sides-swapped', file=BLOCKS,
         old='kernel = (min(2, x.shape[-2]), min(2, x.shape[-1]))',
         new='kernel = (min(2, x.shape[-1]), min(2, x.shape[-2]))',
         why='the 1-pixel rule looks at the wrong side of a non-square map',
         tests=_k('small_and_odd or one_pixel_side')),
    dict(name='dfc-convs-swapped', file=BLOCKS,
         old='attn = self.vertical(self.horizontal(self.reduce(self.downsample(x))))',
         new='attn = self.horizontal(self.vertical(self.reduce(self.downsample(x))))',
         why='vertical (k, 1) conv before the horizontal (1, k) one',
         tests=PARITY),
    dict(name='dfc-horizontal-padding', file=BLOCKS,
         old="""            out_channels, out_channels, (1, kernel_size), padding=(0, pad),""",
         new="""            out_channels, out_channels, (1, kernel_size), padding=(pad, 0),""",
         why='the horizontal (1, k) conv padded vertically (the gate is then resized '
             'to fit, so nothing crashes)',
         tests=PARITY),
    dict(name='dfc-hard-sigmoid-gate', file=BLOCKS,
         old='gate = torch.sigmoid(attn.float())',
         new='gate = F.hardsigmoid(attn.float())',
         why='the DFC gate is a hard sigmoid instead of a sigmoid',
         tests=PARITY),
    dict(name='dfc-bilinear-resize', file=BLOCKS,
         old="return F.interpolate(gate, size=tuple(size), mode='nearest')",
         new="return F.interpolate(gate, size=tuple(size), mode='bilinear')",
         why='the gate is resized bilinearly instead of nearest',
         tests=PARITY),
    dict(name='dfc-default-blocks', file=BACKBONE,
         old='            return frozenset(range(2, num_blocks))',
         new='            return frozenset(range(1, num_blocks))',
         why='DFC attention also in the second bottleneck',
         tests=_k('dfc_attention_is_in_every')),
    # ---------------------------------------------------------------- ghost module
    dict(name='ghost-concat-order', file=BLOCKS,
         old='out = torch.cat([intrinsic, self.cheap_operation(intrinsic)], dim=1)',
         new='out = torch.cat([self.cheap_operation(intrinsic), intrinsic], dim=1)',
         why='cheap maps before the intrinsic ones',
         tests=PARITY),
    dict(name='ghost2-activation', file=BLOCKS,
         old="""        self.ghost2 = GhostModule(mid_channels, out_channels, dilation=dilation,
                                  act_cfg=None, **ghost)""",
         new="""        self.ghost2 = GhostModule(mid_channels, out_channels, dilation=dilation,
                                  act_cfg=act_cfg, **ghost)""",
         why='the projecting ghost module gets a ReLU',
         tests=PARITY),
    # -------------------------------------------------------------------------- SE
    dict(name='se-sigmoid-gate', file=BLOCKS,
         old='        return x * F.hardsigmoid(gate)',
         new='        return x * torch.sigmoid(gate)',
         why='SE gate is a sigmoid instead of relu6(x + 3) / 6',
         tests=PARITY),
    dict(name='se-reduced-width', file=BLOCKS,
         old='        reduced = make_divisible(channels * se_ratio, divisor)',
         new='        reduced = int(channels * se_ratio)',
         why='SE hidden width not rounded to a multiple of 4',
         tests=PARITY),
    # -------------------------------------------------------------------- residual
    dict(name='residual-dropped', file=BLOCKS,
         old='        return out + shortcut\n',
         new='        return out\n',
         why='no residual add in the training layout',
         tests=PARITY),
    dict(name='residual-dropped-deploy', file=BLOCKS,
         old='            return out.add_(shortcut)',
         new='            return out',
         why='no residual add in deploy mode without autograd',
         tests=DEPLOY_EQUALS_EVAL),
    # --------------------------------------------------------- taps, widths, dilation
    dict(name='default-taps', file=BACKBONE,
         old='out_indices: Sequence[int] = (3, 5, 7, 9),',
         new='out_indices: Sequence[int] = (2, 4, 6, 8),',
         why='the default taps are the first block of each stride',
         tests=_k('default_taps')),
    dict(name='round-down-widths', file=UTILS,
         old='rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)',
         new='rounded = max(min_value, int(value) // divisor * divisor)',
         why='channel counts rounded down instead of to the nearest multiple',
         tests=_k('published_channels or make_divisible')),
    dict(name='no-ten-percent-rule', file=UTILS,
         old='    if rounded < min_ratio * value:\n        rounded += divisor\n',
         new='',
         why='make_divisible may fall more than 10% below the value',
         tests=_k('published_channels or make_divisible')),
    dict(name='final-conv-not-widened', file=BACKBONE,
         old='final_channels = make_divisible(settings.table[-1][-1][1] * w, 4)',
         new='final_channels = make_divisible(settings.table[-1][-1][1], 4)',
         why='the final 1x1 conv keeps 960 channels at every width',
         tests=_k('published_channels')),
    dict(name='dilation-before-stride', file=BACKBONE,
         old='first_dilation=prev_dilation if i == 0 else dilation,',
         new='first_dilation=dilation,',
         why='the dilation of a stage also applied to the conv that lost its stride',
         tests=_k('dilation_is_applied_after')),
    # ---------------------------------------------------------- freezing, norm_eval
    dict(name='frozen-stages-off-by-one', file=BACKBONE,
         old='        for i in range(self.frozen_stages + 1):',
         new='        for i in range(self.frozen_stages):',
         why='frozen_stages=k freezes only layers 0..k-1',
         tests=_k('frozen_stages_get_no_gradients')),
    dict(name='frozen-bn-keeps-training', file=BACKBONE,
         old="""            layer = getattr(self, f'layer{i}')
            layer.eval()
""",
         new="""            layer = getattr(self, f'layer{i}')
""",
         why='frozen layers keep updating their BN statistics',
         tests=_k('frozen_stage_bn_statistics')),
    dict(name='norm-eval-ignored', file=BACKBONE,
         old='        if mode and self.norm_eval:',
         new='        if not mode and self.norm_eval:',
         why='norm_eval=True leaves BN in training mode',
         tests=_k('norm_eval_keeps')),
    # ---------------------------------------------------------- checkpoint renaming
    dict(name='rename-primary-cheap-bn-swapped', file=LAYOUTS,
         old=r"""    (rf'(ghost[12])\.primary_conv\.1\.{_BN}', r'\1.primary_conv.bn.\2'),
    (r'(ghost[12])\.cheap_operation\.0\.weight', r'\1.cheap_operation.conv.weight'),
    (rf'(ghost[12])\.cheap_operation\.1\.{_BN}', r'\1.cheap_operation.bn.\2'),""",
         new=r"""    (rf'(ghost[12])\.primary_conv\.1\.{_BN}', r'\1.cheap_operation.bn.\2'),
    (r'(ghost[12])\.cheap_operation\.0\.weight', r'\1.cheap_operation.conv.weight'),
    (rf'(ghost[12])\.cheap_operation\.1\.{_BN}', r'\1.primary_conv.bn.\2'),""",
         why='the BNs of the primary and cheap convs (same shapes) trade places',
         tests=PARITY),
    dict(name='rename-dfc-bn-swapped', file=LAYOUTS,
         old=r"""    (rf'ghost1\.short_conv\.3\.{_BN}', r'ghost1.dfc.horizontal.bn.\1'),
    (r'ghost1\.short_conv\.4\.weight', r'ghost1.dfc.vertical.conv.weight'),
    (rf'ghost1\.short_conv\.5\.{_BN}', r'ghost1.dfc.vertical.bn.\1'),""",
         new=r"""    (rf'ghost1\.short_conv\.3\.{_BN}', r'ghost1.dfc.vertical.bn.\1'),
    (r'ghost1\.short_conv\.4\.weight', r'ghost1.dfc.vertical.conv.weight'),
    (rf'ghost1\.short_conv\.5\.{_BN}', r'ghost1.dfc.horizontal.bn.\1'),""",
         why='the BNs of the two DFC depthwise convs (same shapes) trade places',
         tests=PARITY),
    dict(name='head-layers-swapped', file=LAYOUTS,
         old="            index = 0 if module == 'conv_head' else 1",
         new="            index = 1 if module == 'conv_head' else 0",
         why="the reference head's conv_head and classifier go to the wrong layers",
         tests=['tests/test_checkpoint.py', '-k',
                'converter_writes_a_classifier and 1.0x']),
    dict(name='profiler-counters-kept', file=LAYOUTS,
         old="PROFILER_SUFFIXES = ('total_ops', 'total_params')",
         new="PROFILER_SUFFIXES = ('total_ops',)",
         why="thop's total_params counters are not recognised as non-weights",
         tests=['tests/test_checkpoint.py', '-k', 'profiler_counters']),
    # ------------------------------------------------------------- strict loading
    dict(name='strict-ignores-missing', file=ADAPTER,
         old='    if missing or unexpected or mismatched:',
         new='    if unexpected or mismatched:',
         why='a checkpoint that lacks some weights loads partially',
         tests=['tests/test_checkpoint.py', 'tests/test_mutation_targets.py', '-k',
                'refused or missing']),
    dict(name='strict-ignores-unexpected', file=ADAPTER,
         old='    if missing or unexpected or mismatched:',
         new='    if missing or mismatched:',
         why='a checkpoint with extra tensors loads without a word',
         tests=['tests/test_checkpoint.py', 'tests/test_mutation_targets.py', '-k',
                'refused or unexpected']),
    dict(name='strict-ignores-shapes', file=ADAPTER,
         old='    if missing or unexpected or mismatched:',
         new='    if missing or unexpected:',
         why='a checkpoint of another width gets past the check',
         tests=['tests/test_checkpoint.py', '-k', 'another_width']),
    # ---------------------------------------------------------------- deploy folding
    dict(name='fold-mean-sign', file=DEPLOY,
         old='beta + (bias - bn.running_mean.double()) * scale',
         new='beta + (bias + bn.running_mean.double()) * scale',
         why='BN folding adds the running mean instead of subtracting it',
         tests=DEPLOY_EQUALS_EVAL),
    dict(name='fold-without-eps', file=DEPLOY,
         old='std = torch.sqrt(bn.running_var.double() + bn.eps)',
         new='std = torch.sqrt(bn.running_var.double())',
         why="BN folding forgets eps (visible where a channel's variance is small)",
         tests=DEPLOY_EQUALS_EVAL + ['tests/test_mutation_targets.py', '-k', 'fold']),
    dict(name='deploy-relu-dropped', file=DEPLOY,
         old='            return out.relu_()',
         new='            return out',
         why='a folded conv forgets its ReLU',
         tests=DEPLOY_EQUALS_EVAL),
]
