"""Data sets, canonical labels in use, transforms and samplers.

``build_dataset(name, root, split)`` returns a :class:`FerDataset` whose ``label_names`` state what each target
means; ``list_datasets()`` names the registered loaders. Importing this package registers them all.
"""

from ferkit.data import affectnet, caer_s, fer2013, ferplus, generic, rafdb  # noqa: F401  (register loaders)
from ferkit.data.dataset import FerDataset
from ferkit.data.images import ImageReadError, load_image, to_rgb  # load_image: deprecated (ferkit.image.load_pil)
from ferkit.data.registry import DatasetSpec, build_dataset, get_spec, list_datasets, register_dataset

__all__ = ["build_dataset", "list_datasets", "get_spec", "register_dataset", "DatasetSpec", "FerDataset",
           "load_image", "to_rgb", "ImageReadError"]
