from .toy_shapes import CLASSES as TOY_SHAPES_CLASSES
from .toy_shapes import make_toy_shapes

__all__ = ['TOY_SHAPES_CLASSES', 'make_toy_shapes']
