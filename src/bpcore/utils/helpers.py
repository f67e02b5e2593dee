"""Spec 8.5, ``backprop.utils.helpers``: convert images between paths, base64 strings and PIL images.

Example::

    from bpcore.utils.helpers import img_to_base64, path_to_img

    encoded = img_to_base64(path_to_img("cat.png"))
"""

from bpcore.images import base64_to_img, img_to_base64, path_to_img

__all__ = ["base64_to_img", "img_to_base64", "path_to_img"]
