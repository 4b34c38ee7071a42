"""PyInstaller hook: safetensors' Rust extension is imported from its package."""

from PyInstaller.utils.hooks import collect_dynamic_libs

hiddenimports = ["safetensors._safetensors_rust", "safetensors.torch", "safetensors.numpy"]
binaries = collect_dynamic_libs("safetensors")
