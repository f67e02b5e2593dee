"""Helpers of spec chapter 8: image conversion, cosine similarity, save and load."""

from bpcore.functions import cosine_similarity
from bpcore.images import base64_to_img, img_to_base64, load_image, path_to_img
from bpcore.saving import load, save

__all__ = ["base64_to_img", "cosine_similarity", "img_to_base64", "load", "load_image", "path_to_img", "save"]
