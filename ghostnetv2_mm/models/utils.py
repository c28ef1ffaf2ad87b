"""Small helpers shared by the GhostNetV2 modules."""
from typing import Optional


def make_divisible(value: float, divisor: int = 4,
                   min_value: Optional[int] = None,
                   min_ratio: float = 0.9) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``.

    This is the rounding GhostNet, MobileNet and the GhostNetV2 reference use for every
    channel count: never below ``min_value`` (default: ``divisor``) and never more
    than 10% below ``value`` (one ``divisor`` is added back if it would be).
    """
    if min_value is None:
        min_value = divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < min_ratio * value:
        rounded += divisor
    return rounded
