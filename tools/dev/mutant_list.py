"""The mutants of ``tools/dev/mutants.py``: small, wrong changes to the model and the
checkpoint code, each with the tests that must notice it.

Each entry: ``name``; ``file`` (relative to the repository root); ``old`` (text that
must occur exactly once in the file) and ``new`` (what it becomes); ``why`` (what is
wrong about it, printed if it survives); ``tests`` (pytest node ids; the unmutated
baseline runs their union). Keep each selection small: it runs with ``-x`` once per mutant,
and every mutant costs a pytest start (10-30 s of imports) on top of its tests.
"""

BLOCKS = 'ghostnetv2_mm/models/blocks.py'
BACKBONE = 'ghostnetv2_mm/models/backbone.py'
ARCH = 'ghostnetv2_mm/models/arch.py'
DEPLOY = 'ghostnetv2_mm/models/deploy.py'
UTILS = 'ghostnetv2_mm/models/utils.py'
LAYOUTS = 'ghostnetv2_mm/checkpoint/layouts.py'
ADAPTER = 'ghostnetv2_mm/checkpoint/adapter.py'
WRAPPERS = 'ghostnetv2_mm/deployment/wrappers.py'
NMS = 'ghostnetv2_mm/deployment/nms.py'
REWRITES = 'ghostnetv2_mm/deployment/graph_rewrites.py'
TRANSFER_PROTOCOLS = 'ghostnetv2_mm/benchmarks/transfer/protocols.py'

# timm's ghostnetv2_100 (the reference's numerics and key names) against ours,
# every stage and the logits, on a non-square 256x320 input.
PARITY = ['tests/test_parity.py::test_every_stage_and_the_logits_match_the_reference'
          '[size1-1.0x]']
DEPLOY_EQUALS_EVAL = ['tests/test_deploy.py::test_deploy_equals_eval[1.0x]']
T_BACKBONE = 'tests/test_backbone.py::'
T_CHECKPOINT = 'tests/test_checkpoint.py::'
T_STRICT = 'tests/test_strict_loading.py::'
MASK_RCNN_ONNX = ['tests/test_onnx_export.py::test_mask_rcnn_onnx_matches_predict']
SAFETY = 'tests/test_tool_safety.py::'
ATTACKS = 'tests/test_safe_loading_attacks.py::'
T_GRAPH = 'tests/test_export_graph.py::'
ONNX_GRAPH = [T_GRAPH + 'test_exported_backbone_has_no_shape_arithmetic_gemm_or_casts']
ONNX_EQUALS_EVAL = [T_GRAPH + 'test_onnx_export_equals_the_eval_mode_network[GhostNetV2]']
ONNX_PADDED = [T_GRAPH + 'test_ghost_concats_feeding_convs_are_padded_to_16_channels']
ONNX_POOL = ['tests/test_onnx_export.py::test_dfc_pooling_traced_at_one_size_holds_at_'
             'every_size[traced-8x8]']


MUTANTS = [
    # -------------------------------------------------------------- DFC attention
    dict(name='dfc-max-pool', file=BLOCKS,
         old='    return F.avg_pool2d(x, kernel_size=kernel, stride=kernel)\n\n\nclass',
         new='    return F.max_pool2d(x, kernel_size=kernel, stride=kernel)\n\n\nclass',
         why='the DFC branch max-pools instead of average-pooling',
         tests=PARITY),
    dict(name='dfc-pool-sides-swapped', file=BLOCKS,
         old='kernel = (min(2, x.shape[-2]), min(2, x.shape[-1]))',
         new='kernel = (min(2, x.shape[-1]), min(2, x.shape[-2]))',
         why='the 1-pixel rule looks at the wrong side of a non-square map',
         tests=[T_BACKBONE + 'test_small_and_odd_inputs_work',
                T_BACKBONE + 'test_dfc_gate_on_one_pixel_side_skips_pooling_along_that_side']),
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
         old='gate = torch.sigmoid(attn if attn.dtype == torch.float32 else attn.float())',
         new='gate = F.hardsigmoid(attn if attn.dtype == torch.float32 else attn.float())',
         why='the DFC gate is a hard sigmoid instead of a sigmoid',
         tests=PARITY),
    dict(name='dfc-bilinear-resize', file=BLOCKS,
         old="return F.interpolate(gate, size=tuple(size), mode='nearest')",
         new="return F.interpolate(gate, size=tuple(size), mode='bilinear')",
         why='the gate is resized bilinearly instead of nearest',
         tests=PARITY),
    dict(name='dfc-default-blocks', file=ARCH,
         old='            return frozenset(range(2, num_blocks))',
         new='            return frozenset(range(1, num_blocks))',
         why='DFC attention also in the second bottleneck',
         tests=[T_BACKBONE + 'test_dfc_attention_is_in_every_bottleneck_but_the_first_two']),
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
         tests=[T_BACKBONE + 'test_default_taps_are_the_last_block_of_each_stride']),
    dict(name='round-down-widths', file=UTILS,
         old='rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)',
         new='rounded = max(min_value, int(value) // divisor * divisor)',
         why='channel counts rounded down instead of to the nearest multiple',
         tests=[T_BACKBONE + 'test_every_layer_has_the_published_channels_and_stride',
                T_BACKBONE + 'test_make_divisible_rounds_like_the_reference']),
    dict(name='no-ten-percent-rule', file=UTILS,
         old='    if rounded < min_ratio * value:\n        rounded += divisor\n',
         new='',
         why='make_divisible may fall more than 10% below the value',
         tests=[T_BACKBONE + 'test_every_layer_has_the_published_channels_and_stride',
                T_BACKBONE + 'test_make_divisible_rounds_like_the_reference']),
    dict(name='final-conv-not-widened', file=BACKBONE,
         old='final_channels = make_divisible(settings.table[-1][-1][1] * w, 4)',
         new='final_channels = make_divisible(settings.table[-1][-1][1], 4)',
         why='the final 1x1 conv keeps 960 channels at every width',
         tests=[T_BACKBONE + 'test_every_layer_has_the_published_channels_and_stride']),
    dict(name='dilation-before-stride', file=BACKBONE,
         old='first_dilation=prev_dilation if i == 0 else dilation,',
         new='first_dilation=dilation,',
         why='the dilation of a stage also applied to the conv that lost its stride',
         tests=[T_BACKBONE + 'test_dilation_is_applied_after_the_removed_stride']),
    # ---------------------------------------------------------- freezing, norm_eval
    dict(name='frozen-stages-off-by-one', file=BACKBONE,
         old='        for i in range(self.frozen_stages + 1):',
         new='        for i in range(self.frozen_stages):',
         why='frozen_stages=k freezes only layers 0..k-1',
         tests=[T_BACKBONE + 'test_frozen_stages_get_no_gradients_and_stay_frozen_in_train']),
    dict(name='frozen-bn-keeps-training', file=BACKBONE,
         old="""            layer = getattr(self, f'layer{i}')
            layer.eval()
""",
         new="""            layer = getattr(self, f'layer{i}')
""",
         why='frozen layers keep updating their BN statistics',
         tests=[T_BACKBONE + 'test_frozen_stage_bn_statistics_do_not_change_in_training']),
    dict(name='norm-eval-ignored', file=BACKBONE,
         old='        if mode and self.norm_eval:',
         new='        if not mode and self.norm_eval:',
         why='norm_eval=True leaves BN in training mode',
         tests=[T_BACKBONE + 'test_norm_eval_keeps_bn_statistics_while_training']),
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
         tests=[T_CHECKPOINT + 'test_converter_writes_a_classifier_that_reproduces_the_reference[1.0x]']),
    dict(name='profiler-counters-kept', file=LAYOUTS,
         old="PROFILER_SUFFIXES = ('total_ops', 'total_params')",
         new="PROFILER_SUFFIXES = ('total_ops',)",
         why="thop's total_params counters are not recognised as non-weights",
         tests=[T_CHECKPOINT + 'test_profiler_counters_are_recognised_and_dropped']),
    # ------------------------------------------------------------- strict loading
    dict(name='strict-ignores-missing', file=ADAPTER,
         old='    if missing or unexpected or mismatched:',
         new='    if unexpected or mismatched:',
         why='a checkpoint that lacks some weights loads partially',
         tests=[T_STRICT + 'test_a_checkpoint_missing_one_weight_is_refused_and_nothing_is_loaded']),
    dict(name='strict-ignores-unexpected', file=ADAPTER,
         old='    if missing or unexpected or mismatched:',
         new='    if missing or mismatched:',
         why='a checkpoint with extra tensors loads without a word',
         tests=[T_STRICT + 'test_a_checkpoint_with_one_unexpected_tensor_is_refused_and_nothing_is_loaded']),
    dict(name='strict-ignores-shapes', file=ADAPTER,
         old='    if missing or unexpected or mismatched:',
         new='    if missing or unexpected:',
         why='a checkpoint of another width gets past the check',
         tests=[T_CHECKPOINT + 'test_pretrained_of_another_width_is_refused_and_nothing_is_loaded']),
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
         tests=DEPLOY_EQUALS_EVAL + ['tests/test_deploy.py::test_folding_a_batch_norm_keeps_its_eps']),
    # ------------------------------------------------------------------ the tools
    dict(name='benchmark-nan-features-pass', file=TRANSFER_PROTOCOLS,
         old='    if len(bad):\n        raise NonFiniteError(',
         new='    if False:\n        raise NonFiniteError(',
         why='the transfer benchmark lets NaN features through to the linear probe',
         tests=['tests/test_classification.py::'
                'test_benchmark_stops_on_non_finite_features_and_records_nothing']),
    dict(name='deploy-relu-dropped', file=DEPLOY,
         old='            return out.relu_()',
         new='            return out',
         why='a folded conv forgets its ReLU',
         tests=DEPLOY_EQUALS_EVAL),
    # ------------------------------------------------------- the export graph's forms
    dict(name='onnx-gate-pool-ceil', file=BLOCKS,
         old="return g.op('AveragePool', x, kernel_shape_i=[2, 2], strides_i=[2, 2])",
         new="return g.op('AveragePool', x, kernel_shape_i=[2, 2], strides_i=[2, 2], "
             "ceil_mode_i=1)",
         why='the exported DFC pooling keeps a half window at odd sides',
         tests=ONNX_POOL),
    dict(name='onnx-gate-resize-half-pixel', file=BLOCKS,
         old="mode_s='nearest', coordinate_transformation_mode_s='asymmetric',",
         new="mode_s='nearest', coordinate_transformation_mode_s='half_pixel',",
         why="the exported gate resize samples other pixels than PyTorch's nearest",
         tests=ONNX_EQUALS_EVAL),
    dict(name='onnx-se-relu-dropped', file=BLOCKS,
         old='hidden = self.act(_linear_as_conv(pooled, self.conv_reduce))',
         new='hidden = _linear_as_conv(pooled, self.conv_reduce)',
         why="the exported SE forgets its hidden ReLU",
         tests=ONNX_EQUALS_EVAL),
    dict(name='onnx-se-as-gemm', file=BLOCKS,
         old='''        if _is_exporting():
            # The ONNX form: the Linear layers''',
         new='''        if False:
            # The ONNX form: the Linear layers''',
         why='the exported SE runs as Flatten + Gemm again',
         tests=ONNX_GRAPH),
    dict(name='onnx-resize-shape-arithmetic', file=BLOCKS,
         old='        gate = _OnnxResizeLike.apply(gate, out)',
         new="        gate = F.interpolate(gate, size=(height, width), mode='nearest')",
         why='the exported gate resize computes its size with Gather / Unsqueeze / Concat',
         tests=ONNX_GRAPH),
    dict(name='onnx-pool-crop-and-pad', file=BLOCKS,
         old='''        if _is_exporting():
            return _OnnxGatePool.apply(x)''',
         new='''        if False:
            return _OnnxGatePool.apply(x)''',
         why='the exported DFC pooling crops and pads the full-size map again',
         tests=ONNX_GRAPH),
    # ------------------------------------------------------------ whole-model ONNX
    dict(name='onnx-roi-level-coarser', file=WRAPPERS,
         old='level = torch.floor(torch.log2(scale / extractor.finest_scale + 1e-6))',
         new='level = torch.floor(torch.log2(scale / extractor.finest_scale / 2 + 1e-6))',
         why='the exported graph pools RoIs from a finer pyramid level than mmdet',
         tests=MASK_RCNN_ONNX),
    dict(name='onnx-rcnn-keeps-padding-proposals', file=WRAPPERS,
         old='scores = scores * (proposals[..., 4:] > 0).to(scores.dtype)',
         new='scores = scores * 1',
         why='padding rows of the RPN output become detections in the second stage',
         tests=MASK_RCNN_ONNX),
    dict(name='onnx-mask-of-class-0', file=WRAPPERS,
         old='index = labels.reshape(-1).index_select(0, kept).reshape(-1, 1, 1, 1)',
         new='index = (labels.reshape(-1).index_select(0, kept) * 0).reshape(-1, 1, 1, 1)',
         why="every detection gets the mask of class 0 instead of its own class's",
         tests=MASK_RCNN_ONNX),
    dict(name='onnx-masks-out-of-order', file=WRAPPERS,
         old='rows = torch.where(real, rank, torch.zeros_like(rank) + kept.shape[0])',
         new='rows = torch.where(real, rank.flip(0), torch.zeros_like(rank) + kept.shape[0])',
         why='masks are put back on the wrong detections',
         tests=MASK_RCNN_ONNX),
    dict(name='onnx-rois-not-reordered', file=WRAPPERS,
         old='return torch.cat(pooled).index_select(0, torch.cat(order).argsort())',
         new='return torch.cat(pooled)',
         why='RoI features stay grouped by level instead of following their RoIs',
         tests=MASK_RCNN_ONNX),
    dict(name='onnx-nms-across-groups', file=NMS,
         old='shifted = boxes + (groups.to(boxes.dtype) * (largest + 1)).unsqueeze(-1)',
         new='shifted = boxes',
         why='boxes of different classes (RPN: levels) suppress each other',
         tests=MASK_RCNN_ONNX
         + ['tests/test_onnx_export.py::test_retinanet_onnx_matches_predict_at_two_sizes']),
    # -------------------------------------------- the tools' guarantees (issue 19)
    dict(name='getattr-guard-allows-everything', file='ghostnetv2_mm/checkpoint/safe_io.py',
         old='    if obj is HistoryBuffer and name in HISTORY_BUFFER_STATISTICS:',
         new='    if True:',
         why='the safe loader resolves every getattr a file asks for (the walk to '
             'functions, __globals__ and eval)',
         tests=[ATTACKS + 'test_load_checkpoint_file_refuses_getattr_walks[function]']),
    dict(name='output-same-file-unchecked', file='ghostnetv2_mm/utils/cli.py',
         old='        if source and not is_url(source) and same_file(path, source):',
         new='        if False:',
         why='an output that is one of the inputs is not refused',
         tests=[SAFETY + 'test_tool_case[quantize-dst-is-src]']),
    dict(name='output-written-in-place', file='ghostnetv2_mm/utils/fileio.py',
         old='        os.close(fd)\n        return self\n',
         new='        os.close(fd)\n        os.unlink(self.path)\n        self.path = self.target\n'
             '        return self\n',
         why='outputs are written into the target itself (not atomically): a failed or '
             'killed run destroys the old file',
         tests=[SAFETY + 'test_tool_case[export-nothing-compared-fails-and-keeps-the-old-file]']),
    dict(name='failed-check-replaces-the-file', file='ghostnetv2_mm/utils/fileio.py',
         old='            if exc_type is None and self.failure is None:',
         new='            if exc_type is None:',
         why='a result whose check failed still replaces the target',
         tests=[SAFETY + 'test_tool_case[export-nothing-compared-fails-and-keeps-the-old-file]']),
    dict(name='pass-on-nothing-compared', file='ghostnetv2_mm/deployment/verify.py',
         old="    if not rows or (detector and sum(r['expected'] for r in rows) == 0):",
         new='    if not rows:',
         why='a detector check in which nothing was detected, so nothing compared, passes',
         tests=[SAFETY + 'test_tool_case[export-nothing-compared-fails-and-keeps-the-old-file]']),
    dict(name='ties-count-as-mismatches', file='ghostnetv2_mm/deployment/verify.py',
         old='        if free:',
         new='        if False:',
         why='a box that took the place of an equally scored one counts as a mismatch',
         tests=[SAFETY + 'test_an_equally_scored_box_kept_instead_is_a_tie_not_a_mismatch']),
    # ------------------------------------------------- exported-graph rewrites
    dict(name='ghost-padding-second-half-misplaced', file=REWRITES,
         old='[(channels, pad), (2 * channels, pad)]',
         new='[(channels, pad), (channels, pad)]',
         why="the consumers' zero columns for the cheap half's padding sit at the "
             'wrong place, so they weigh the wrong channels',
         tests=ONNX_PADDED),
    dict(name='ghost-padding-not-zero', file=REWRITES,
         old='        parts.append(np.zeros(shape, array.dtype))',
         new='        parts.append(np.full(shape, 0.5, array.dtype))',
         why='the padded channels are not zero, so they add to the real ones',
         tests=ONNX_PADDED),
    dict(name='ghost-padding-into-the-gate', file=REWRITES,
         old="            if (node.op_type != 'Conv' or list(node.input).index(name) != 0",
         new="            if node.op_type in ('Mul', 'Add'):\n                continue\n"
             "            if (node.op_type != 'Conv' or list(node.input).index(name) != 0",
         why='concatenations that feed the DFC gate product or a residual add are '
             'padded too (NCHW ops then carry the padding; shapes no longer match)',
         tests=ONNX_PADDED),
]
