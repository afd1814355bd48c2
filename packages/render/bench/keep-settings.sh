#!/bin/sh
# A stand-in for Blender (LITTER_BLENDER) that keeps a copy of the settings file litter passes, for profile-views.py.
# It never replaces a file: remove /tmp/litter-settings.json first to take a new copy.
keep=/tmp/litter-settings.json
for arg in "$@"; do
  case "$arg" in
    *settings.json)
      if [ -e "$keep" ]; then echo "keep-settings.sh: $keep exists; remove it to keep a new copy" >&2; else cp "$arg" "$keep"; fi
      ;;
  esac
done
exec blender "$@"
