"""The add-on's preferences: where the service is, the user's token, the default backend and the download folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import bpy

from semcoat.errors import SemcoatError

from .client import ServiceClient

ADDON_ID = __package__ or "semcoat"
DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_DOWNLOADS = "~/semcoat-datasets"


class SEMCOAT_AddonPreferences(bpy.types.AddonPreferences):
    """Service URL, token (hidden as a password), default backend, download folder, and a Test connection button."""

    bl_idname = ADDON_ID

    service_url: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Service URL", default=DEFAULT_URL,
        description="Base URL of the semcoat render service (`semcoat serve` prints it)")
    token: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Token", subtype="PASSWORD",
        description="Your token, from the admin's `semcoat token create NAME` (the embedded default prints where "
                    "its first token is)")
    default_backend: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Default backend", default="local",
        items=[("local", "Local", "The service's own render processes"),
               ("slurm", "Slurm", "A Slurm job array on the cluster the service is set up for")],
        description="Where batches render when the panel's backend is 'Default'")
    download_folder: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Download folder", subtype="DIR_PATH", default=DEFAULT_DOWNLOADS,
        description="Downloaded datasets go into a sub-folder <batch name>-<batch id> of this folder")

    def draw(self, context: Any) -> None:
        """The preferences, then Test connection."""
        layout = self.layout
        for name in ("service_url", "token", "default_backend", "download_folder"):
            layout.prop(self, name)
        layout.operator("semcoat.test_connection", icon="URL")


def addon_preferences(context: Any) -> Any:
    """This add-on's preferences; SemcoatError when the add-on is registered but not enabled as an add-on."""
    addon = context.preferences.addons.get(ADDON_ID)
    if addon is None:
        raise SemcoatError(f"the semcoat add-on ({ADDON_ID}) is not enabled in Preferences > Add-ons; enable it")
    return addon.preferences


def client_from(context: Any) -> ServiceClient:
    """A client for the service and token of the preferences."""
    prefs = addon_preferences(context)
    return ServiceClient(prefs.service_url, prefs.token)


def download_root(context: Any) -> Path:
    """The download folder of the preferences, expanded (``~``, Blender's ``//`` relative to the .blend)."""
    text = addon_preferences(context).download_folder.strip() or DEFAULT_DOWNLOADS
    return Path(os.path.expanduser(bpy.path.abspath(text)))


classes = (SEMCOAT_AddonPreferences,)
register, unregister = bpy.utils.register_classes_factory(classes)
