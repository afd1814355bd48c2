#!/bin/sh
# A stand-in for Blender (LITTER_BLENDER) that keeps a copy of the settings file litter passes, for profile-views.py.
for arg in "$@"; do case "$arg" in *settings.json) cp "$arg" /tmp/litter-settings.json ;; esac; done
exec blender "$@"
