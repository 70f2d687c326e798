"""The host's folders: model folders by name (with the user's extra_model_paths), input, output and temp."""

from __future__ import annotations

import folder_paths

from .needs import Need

NEEDS = (
    Need("folder_paths:add_model_folder_path", "the animatediff_models and animatediff_motion_lora folders",
         params=("folder_name", "full_folder_path")),
    Need("folder_paths:folder_names_and_paths", "the animatediff_models and animatediff_motion_lora folders"),
    Need("folder_paths:models_dir", "the animatediff_models and animatediff_motion_lora folders"),
    Need("folder_paths:get_filename_list", "the model lists of Load Motion Module and Motion LoRA Loader"),
    Need("folder_paths:get_full_path_or_raise", "Load Motion Module and Motion LoRA Loader"),
    Need("folder_paths:get_input_directory", "Load Video and Load Image Sequence"),
    Need("folder_paths:get_output_directory", "Video Combine"),
    Need("folder_paths:get_temp_directory", "Video Combine's previews"),
    Need("folder_paths:get_user_directory", "the fast path's persistent compile cache"),
    Need("folder_paths:get_save_image_path", "Video Combine's file names",
         params=("filename_prefix", "output_dir", "image_width", "image_height")),
)


def add_model_folder(name: str, paths: list[str], extensions: tuple[str, ...]) -> None:
    """Register model folder `name` at `paths` (after the user's own), listing files with `extensions` too."""
    for path in paths:
        folder_paths.add_model_folder_path(name, path)
    registered, known = folder_paths.folder_names_and_paths[name]
    folder_paths.folder_names_and_paths[name] = (registered, set(known) | set(extensions))


def models_dir() -> str:
    return folder_paths.models_dir


def model_names(folder: str) -> list[str]:
    """The files of a model folder, as the editor lists them."""
    return folder_paths.get_filename_list(folder)


def model_path(folder: str, name: str) -> str:
    """The full path of a listed model file; the host's clear error when it is gone."""
    return folder_paths.get_full_path_or_raise(folder, name)


def input_dir() -> str:
    return folder_paths.get_input_directory()


def output_dir() -> str:
    return folder_paths.get_output_directory()


def temp_dir() -> str:
    return folder_paths.get_temp_directory()


def user_dir() -> str:
    return folder_paths.get_user_directory()


def save_path(prefix: str, directory: str, width: int = 0, height: int = 0) -> tuple[str, str, int, str, str]:
    """(folder, file name, next counter, subfolder, prefix) for files named from `prefix` in `directory`, the way
    the host numbers its saved images."""
    return folder_paths.get_save_image_path(prefix, directory, width, height)
