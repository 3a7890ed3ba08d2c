"""Sample grids: where each image lands, the padding between them, and the fill of an unfilled last row."""
import numpy as np
from PIL import Image

from qimage.grid import image_grid


def test_images_land_row_major_with_padding_between_and_around():
    red, blue = Image.new("RGB", (4, 3), (255, 0, 0)), Image.new("RGB", (2, 2), (0, 0, 255))
    grid = np.array(image_grid([red, blue, red], cols=2, pad=1, background=(0, 255, 0)))
    # cells are 4x3 (the largest image) + 1 px of padding each, plus 1 px border on the right and bottom
    assert grid.shape == (2 * 4 + 1, 2 * 5 + 1, 3)
    assert (grid[1:4, 1:5] == (255, 0, 0)).all()  # first cell
    assert (grid[1:3, 6:8] == (0, 0, 255)).all() and (grid[3, 6:10] == (0, 255, 0)).all()  # small image top-left
    assert (grid[5:8, 1:5] == (255, 0, 0)).all()  # second row
    assert (grid[5:8, 6:10] == (0, 255, 0)).all()  # the unfilled cell is background
    assert (grid[0] == (0, 255, 0)).all() and (grid[:, 0] == (0, 255, 0)).all()
