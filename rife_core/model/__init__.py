"""The RIFE 4.x networks: `rows` (the family as a table), `blocks` (IFBlock, ResConv, encoders),
`warp` (backward warping), `ifnet` (IFNet for any row), `detect` (row from a state dict, strict load)."""

from rife_core.model.detect import detect_row, load_network
from rife_core.model.ifnet import IFNet
from rife_core.model.rows import ROWS, Row, row_for

__all__ = ["IFNet", "ROWS", "Row", "detect_row", "load_network", "row_for"]
