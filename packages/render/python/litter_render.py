"""The Blender side of `litter render` (@litter/render). Not meant to be run by hand.

    blender -b --factory-startup --python-exit-code 2 --python litter_render.py -- SETTINGS.json

SETTINGS.json holds the resolved settings (see packages/render/src/settings.ts). The script then reads one JSON
command per line on stdin, {"scene": N} or {"quit": true}, renders whole scenes and answers with lines
"LITTER {json}" on stdout: ready, view (one per render), scene (the records of a finished scene), error.

Every scene starts from Blender's factory startup file and draws from its own random generator (seed, scene), so a
scene comes out the same whichever process renders it and whatever it rendered before.

The Blender API calls are those of shared/tools/render_scenes.py (rigid-body drop, orbiting camera, projected
boxes), plus an object-index pass for the pixels each object covers.
"""
import json
import math
import os
import random
import sys

import bpy
from bpy_extras.object_utils import world_to_camera_view
from mathutils import Vector

try:
    import numpy as np
except ImportError:  # a Blender without numpy: the same results in plain Python, slower
    np = None

PROTOCOL = 1
# The colours of render_scenes.py, by class position, so that default renders look like the shared fixtures.
PALETTE = [(0.8, 0.1, 0.1), (0.1, 0.3, 0.8), (0.9, 0.8, 0.1), (0.1, 0.7, 0.2), (0.7, 0.2, 0.7), (0.9, 0.5, 0.1)]
PRIMITIVES = {
    "Cube": lambda: bpy.ops.mesh.primitive_cube_add(size=1.6),
    "Sphere": lambda: bpy.ops.mesh.primitive_uv_sphere_add(radius=0.9),
    "Can": lambda: bpy.ops.mesh.primitive_cylinder_add(radius=0.45, depth=1.4),
    "Cone": lambda: bpy.ops.mesh.primitive_cone_add(radius1=0.8, depth=1.5),
    "Torus": lambda: bpy.ops.mesh.primitive_torus_add(major_radius=0.8, minor_radius=0.25),
    "Bottle": lambda: bpy.ops.mesh.primitive_cylinder_add(radius=0.3, depth=2.0),
}


def emit(event, **fields):
    # A leading newline: Blender's own output may have left a line unfinished.
    sys.stdout.write("\nLITTER " + json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def die_with_parent():
    """On Linux, the kernel kills this Blender when litter dies (even by SIGKILL): no orphan renders on."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except Exception:
        pass


def uniform(rng, bounds):
    low, high = bounds
    return low if low == high else rng.uniform(low, high)


def colour(rng, bounds):
    low, high = bounds
    return tuple(uniform(rng, (a, b)) for a, b in zip(low, high))


# ---------------------------------------------------------------------------------------------- the scene


def reset(settings):
    # The factory startup file, not read_factory_settings: that one also resets the preferences and registers
    # every add-on again (ten times the CPU), and no scene depends on either.
    bpy.ops.wm.read_homefile(use_factory_startup=True, use_empty=False, load_ui=False)
    for ob in list(bpy.data.objects):
        bpy.data.objects.remove(ob, do_unlink=True)
    scene = bpy.context.scene
    render = scene.render
    render.resolution_x, render.resolution_y = settings["width"], settings["height"]
    render.resolution_percentage = 100
    render.image_settings.file_format = "PNG"
    render.image_settings.color_mode = "RGB"
    # No metadata (date, render time) in the PNGs: the same scene gives the same bytes.
    for name in dir(render):
        if name.startswith("use_stamp"):
            setattr(render, name, False)
    render.threads_mode = "FIXED"
    render.threads = settings["threads"]
    render.engine = "CYCLES"
    # Eevee has no object-index pass in Blender 3.x: with Eevee the index pass is a one-sample Cycles render.
    scene.cycles.samples = 1 if settings["engine"] == "eevee" else settings["samples"]
    scene.cycles.use_denoising = False
    scene.cycles.seed = 0
    # Only the camera moves between the views of a scene: keep the scene's data between them.
    render.use_persistent_data = True
    set_device(scene, settings["device"])
    if settings["engine"] == "eevee":
        scene.eevee.taa_render_samples = settings["samples"]
    return scene


def use_eevee(render):
    """Eevee's engine name: BLENDER_EEVEE in 3.x-4.1 and again from 5.0, BLENDER_EEVEE_NEXT in 4.2-4.5."""
    for name in ("BLENDER_EEVEE_NEXT", "BLENDER_EEVEE"):
        try:
            render.engine = name
            return
        except TypeError:
            continue
    raise RuntimeError("this Blender has no Eevee engine; use --engine cycles")


def render_view(scene, settings, output, path):
    """Renders the image to `path` and the object-index pass through the compositor's `output` node."""
    scene.render.filepath = path
    if settings["engine"] != "eevee":
        bpy.ops.render.render(write_still=True)
        return
    output.mute = True
    use_eevee(scene.render)
    bpy.ops.render.render(write_still=True)
    output.mute = False
    scene.render.engine = "CYCLES"
    bpy.ops.render.render(write_still=False)


def set_device(scene, device):
    if device == "cpu":
        scene.cycles.device = "CPU"
        return
    prefs = bpy.context.preferences.addons["cycles"].preferences
    for kind in ("OPTIX", "CUDA", "HIP", "METAL", "ONEAPI"):
        try:
            prefs.compute_device_type = kind
        except TypeError:
            continue
        prefs.get_devices()
        gpus = [d for d in prefs.devices if d.type == kind]
        if gpus:
            for d in prefs.devices:
                d.use = d.type == kind
            scene.cycles.device = "GPU"
            return
    raise RuntimeError("no GPU that Cycles can use (tried OptiX, CUDA, HIP, Metal, oneAPI); use --device cpu")


def material(name, rgb, rng, materials):
    m = bpy.data.materials.new(name)
    m.use_nodes = True
    bsdf = m.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (*rgb, 1)
    if materials["roughness"] is not None:
        bsdf.inputs["Roughness"].default_value = uniform(rng, materials["roughness"])
    if materials["metallic"] is not None:
        bsdf.inputs["Metallic"].default_value = uniform(rng, materials["metallic"])
    return m


def ground_material(settings, rng):
    ground = settings["ground"]
    m = material("ground", colour(rng, ground["color"]), rng, {"roughness": None, "metallic": None})
    texture = ground["texture"]
    if texture is None:
        return m
    nodes, links = m.node_tree.nodes, m.node_tree.links
    bsdf = nodes["Principled BSDF"]
    if texture == "checker":
        tex = nodes.new("ShaderNodeTexChecker")
        tex.inputs["Color1"].default_value = (*colour(rng, ground["color"]), 1)
        tex.inputs["Color2"].default_value = (*colour(rng, ground["color"]), 1)
        tex.inputs["Scale"].default_value = ground["textureScale"]
    else:
        tex = nodes.new("ShaderNodeTexImage")
        tex.image = bpy.data.images.load(texture)
        mapping = nodes.new("ShaderNodeMapping")
        coords = nodes.new("ShaderNodeTexCoord")
        mapping.inputs["Scale"].default_value = (ground["textureScale"],) * 3
        links.new(coords.outputs["UV"], mapping.inputs["Vector"])
        links.new(mapping.outputs["Vector"], tex.inputs["Vector"])
    links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    return m


def import_mesh(spec):
    """Adds the user's mesh (obj, gltf/glb, stl, or an object of a .blend) as one active object."""
    path, kind = spec["path"], spec["format"]
    before = set(bpy.data.objects)
    if kind == "blend":
        with bpy.data.libraries.load(path, link=False) as (data_from, data_to):
            if spec["object"] not in data_from.objects:
                raise RuntimeError(f'{path} has no object "{spec["object"]}" (it has: {", ".join(data_from.objects)})')
            data_to.objects = [spec["object"]]
        for ob in data_to.objects:
            bpy.context.scene.collection.objects.link(ob)
    elif kind == "obj":
        try:
            bpy.ops.wm.obj_import(filepath=path)
        except AttributeError:
            bpy.ops.import_scene.obj(filepath=path)
    elif kind == "stl":
        try:
            bpy.ops.wm.stl_import(filepath=path)
        except AttributeError:
            bpy.ops.import_mesh.stl(filepath=path)
    elif kind == "gltf":
        try:  # Blender 3.4's glTF importer uses numpy.bool, which numpy 1.24 removed
            import numpy

            if not hasattr(numpy, "bool"):
                numpy.bool = bool
        except ImportError:
            pass
        bpy.ops.import_scene.gltf(filepath=path)
    meshes = [ob for ob in set(bpy.data.objects) - before if ob.type == "MESH"]
    if not meshes:
        raise RuntimeError(f"{path} holds no mesh")
    bpy.ops.object.select_all(action="DESELECT")
    for ob in meshes:
        ob.select_set(True)
    bpy.context.view_layer.objects.active = meshes[0]
    if len(meshes) > 1:
        bpy.ops.object.join()
    ob = bpy.context.view_layer.objects.active
    for other in set(bpy.data.objects) - before - {ob}:
        bpy.data.objects.remove(other, do_unlink=True)
    ob.parent = None
    bpy.ops.object.transform_apply(location=False, rotation=True, scale=True)
    bpy.ops.object.origin_set(type="ORIGIN_GEOMETRY", center="BOUNDS")
    ob.location = (0, 0, 0)
    if spec["size"] is not None:
        largest = max(ob.dimensions)
        if largest > 0:
            factor = spec["size"] / largest
            ob.scale = (factor, factor, factor)
            bpy.ops.object.transform_apply(location=False, rotation=False, scale=True)
    return ob


def add_object(spec):
    if spec["kind"] == "primitive":
        PRIMITIVES[spec["shape"]]()
        return bpy.context.active_object
    return import_mesh(spec)


def place(ob, spec, rng, settings):
    """Where an object starts (before the drop): given, or drawn over the spawn square."""
    physics = settings["physics"]
    spawn = physics["spawn"]
    drawn = (
        (rng.uniform(-spawn, spawn), rng.uniform(-spawn, spawn), uniform(rng, physics["dropHeight"])),
        (rng.uniform(0, 2 * math.pi), rng.uniform(0, 2 * math.pi), rng.uniform(0, 2 * math.pi)),
    )
    location = spec.get("location")
    rotation = spec.get("rotation")
    ob.location = drawn[0] if location is None else location
    ob.rotation_euler = drawn[1] if rotation is None else tuple(math.radians(a) for a in rotation)
    if physics["enabled"]:
        bpy.context.view_layer.objects.active = ob
        ob.select_set(True)
        fixed = location is not None and spec.get("physics") is False
        bpy.ops.rigidbody.object_add(type="PASSIVE" if fixed else "ACTIVE")
        ob.select_set(False)


def build(settings, index):
    """Builds scene `index`; returns the scene, the camera, and the class objects in it with pass indices."""
    scene = reset(settings)
    rng = random.Random(settings["seed"] * 1_000_003 + index)
    world = scene.world
    world.use_nodes = True
    background = world.node_tree.nodes["Background"]
    background.inputs[1].default_value = uniform(rng, settings["world"]["strength"])
    if settings["world"]["color"] is not None:
        background.inputs[0].default_value = (*colour(rng, settings["world"]["color"]), 1)

    bpy.ops.mesh.primitive_plane_add(size=settings["ground"]["size"], location=(0, 0, 0))
    ground = bpy.context.active_object
    ground.name = "Ground"
    ground.data.materials.append(ground_material(settings, rng))
    physics = settings["physics"]
    if physics["enabled"]:
        bpy.ops.rigidbody.world_add()
        scene.rigidbody_world.point_cache.frame_start = 1
        scene.rigidbody_world.point_cache.frame_end = physics["frames"] + 20
        bpy.ops.rigidbody.object_add(type="PASSIVE")

    materials = settings["materials"]
    present = []
    for position, spec in enumerate(settings["objects"]):
        # One draw per object and scene, whether or not it is used, so that the draws stay aligned.
        wanted = rng.random() < spec["probability"]
        rgb = tuple(spec["color"]) if spec.get("color") else PALETTE[position % len(PALETTE)]
        if materials["colors"] == "random":
            rgb = (rng.random(), rng.random(), rng.random())
        if not wanted:
            continue
        ob = add_object(spec)
        ob.name = spec["name"]
        if not (spec["kind"] == "file" and spec["keepMaterials"]):
            ob.data.materials.clear()
            ob.data.materials.append(material(spec["name"], rgb, rng, materials))
        ob.pass_index = len(present) + 1
        place(ob, spec, rng, settings)
        present.append((spec["name"], ob))

    distractors = settings["distractors"]
    count = rng.randint(distractors["count"][0], distractors["count"][1])
    extras = []
    for k in range(count):
        shape = distractors["shapes"][rng.randrange(len(distractors["shapes"]))]
        PRIMITIVES[shape]()
        ob = bpy.context.active_object
        ob.name = f"Distractor{k}"
        factor = uniform(rng, distractors["scale"])
        ob.scale = (factor, factor, factor)
        ob.data.materials.append(material(ob.name, (rng.random(), rng.random(), rng.random()), rng, materials))
        ob.pass_index = 0  # not a class: covers what is behind it, counts for nothing
        place(ob, {}, rng, settings)
        extras.append((shape, ob))

    light = settings["light"]
    bpy.ops.object.light_add(type="SUN", location=(0, 0, 20))
    sun = bpy.context.active_object
    elevation, azimuth = uniform(rng, light["elevation"]), uniform(rng, light["azimuth"])
    sun.rotation_euler = (math.radians(90 - elevation), 0, math.radians(azimuth))
    sun.data.energy = uniform(rng, light["energy"])
    sun.data.color = colour(rng, light["color"])

    bpy.ops.object.camera_add(location=(settings["camera"]["distance"][0], 0, 2))
    camera = bpy.context.active_object
    camera.data.lens = settings["camera"]["lens"]
    scene.camera = camera
    target = bpy.data.objects.new("Target", None)
    scene.collection.objects.link(target)
    target.location = settings["camera"]["target"]
    track = camera.constraints.new("TRACK_TO")
    track.target = target
    track.track_axis = "TRACK_NEGATIVE_Z"
    track.up_axis = "UP_Y"

    if physics["enabled"]:
        bpy.ops.ptcache.free_bake_all()
        for frame in range(1, physics["frames"] + 1):
            scene.frame_set(frame)
    drawn = environment(background, ground, sun, present, extras)
    return scene, camera, present, rng, drawn


def rounded(values):
    return [round(v, 6) for v in values]


def bsdf_of(ob):
    """The Principled BSDF of the object's first material, if it has one."""
    m = ob.active_material
    if m is None or not m.use_nodes:
        return None
    return next((n for n in m.node_tree.nodes if n.type == "BSDF_PRINCIPLED"), None)


def surface(ob):
    bsdf = bsdf_of(ob)
    if bsdf is None:
        return None
    return {
        "color": rounded(bsdf.inputs["Base Color"].default_value[:3]),
        "roughness": round(bsdf.inputs["Roughness"].default_value, 6),
        "metallic": round(bsdf.inputs["Metallic"].default_value, 6),
    }


def environment(background, ground, sun, present, extras):
    """What the domain randomisation drew for a scene, read back from Blender's objects (for the record)."""
    nodes = ground.active_material.node_tree.nodes
    checker = next((n for n in nodes if n.type == "TEX_CHECKER"), None)
    image = next((n for n in nodes if n.type == "TEX_IMAGE"), None)
    direction = sun.matrix_world.to_3x3() @ Vector((0, 0, -1))
    return {
        "world": {"strength": round(background.inputs[1].default_value, 6), "color": rounded(background.inputs[0].default_value[:3])},
        "light": {"direction": rounded(direction.normalized()), "energy": round(sun.data.energy, 6), "color": rounded(sun.data.color)},
        "ground": {
            "color": surface(ground)["color"],
            "texture": "checker" if checker else (image.image.filepath if image else None),
            "checker": [rounded(checker.inputs[k].default_value[:3]) for k in ("Color1", "Color2")] if checker else None,
        },
        "materials": {name: surface(ob) for name, ob in present},
        "distractors": [
            {"shape": shape, "location": rounded(ob.matrix_world.translation), "scale": round(ob.scale[0], 6), **(surface(ob) or {})}
            for shape, ob in extras
        ],
    }


# ---------------------------------------------------------------------------------------------- the views


def views(settings, index, rng):
    """(image name, yaw, pitch, distance, height) of each view of scene `index`."""
    cam = settings["camera"]
    prefix = f'{settings["prefix"]}{index}'
    out = []
    if cam["mode"] == "orbit":
        yaws, pitches = cam["grid"]
        for i in range(yaws):
            for j in range(pitches):
                pitch = cam["pitch"][0] if pitches == 1 else cam["pitch"][0] + (cam["pitch"][1] - cam["pitch"][0]) * j / (pitches - 1)
                out.append((f"{prefix}-{i}y-{j}p.png", 360.0 * i / yaws, pitch))
    else:
        for v in range(settings["views"]):
            out.append((f"{prefix}-{v}v.png", rng.uniform(0, 360), uniform(rng, cam["pitch"])))
    result = []
    for name, yaw, pitch in out:
        distance = uniform(rng, cam["distance"]) + (rng.uniform(-1, 1) * cam["distanceJitter"] if cam["distanceJitter"] else 0)
        height = cam["height"] + (rng.uniform(-1, 1) * cam["heightJitter"] if cam["heightJitter"] else 0)
        result.append((name, yaw, pitch, distance, height))
    return result


def strip_png_metadata(path):
    """Drops the text chunks Cycles writes (render times): the same scene gives the same bytes."""
    import struct

    with open(path, "rb") as f:
        data = f.read()
    out, at = [data[:8]], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind = data[at + 4 : at + 8]
        end = at + 12 + length
        if kind not in (b"tEXt", b"zTXt", b"iTXt", b"tIME"):
            out.append(data[at:end])
        at = end
    with open(path, "wb") as f:
        f.write(b"".join(out))


def projection_box(scene, camera, ob):
    """Normalised camera-frame box of the evaluated mesh (render_scenes.py's), or None when out of frame.

    The projection of bpy_extras' world_to_camera_view, for all vertices at once with numpy (it costs more
    than a tenth of a render's time vertex by vertex); vertices behind the camera do not count."""
    deps = bpy.context.evaluated_depsgraph_get()
    ev = ob.evaluated_get(deps)
    mesh = ev.to_mesh()
    try:
        if np is None:
            points = [world_to_camera_view(scene, camera, ev.matrix_world @ v.co) for v in mesh.vertices]
            xs = [co.x for co in points if co.z > 0]
            ys = [co.y for co in points if co.z > 0]
        else:
            co = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
            mesh.vertices.foreach_get("co", co)
            to_camera = np.array(camera.matrix_world.normalized().inverted() @ ev.matrix_world, dtype=np.float64)
            local = co.reshape(-1, 3).astype(np.float64) @ to_camera[:3, :3].T + to_camera[:3, 3]
            z = -local[:, 2]
            local, z = local[z > 0], z[z > 0]
            # The view frame's corners at depth 1: top right, bottom right, bottom left.
            frame = [(-v.x / v.z, -v.y / v.z) for v in camera.data.view_frame(scene=scene)[:3]]
            xs = ((local[:, 0] / z - frame[2][0]) / (frame[1][0] - frame[2][0])).tolist()
            ys = ((local[:, 1] / z - frame[1][1]) / (frame[0][1] - frame[1][1])).tolist()
    finally:
        ev.to_mesh_clear()
    if not xs:
        return None
    clip = lambda t: min(max(t, 0.0), 1.0)
    x1, x2, y1, y2 = clip(min(xs)), clip(max(xs)), clip(min(ys)), clip(max(ys))
    if x1 == x2 or y1 == y2:
        return None
    return [x1, y1, x2, y2]


def setup_index_pass(scene, folder):
    """Compositor: the image to the render result, the object-index pass to an EXR in `folder`."""
    scene.view_layers[0].use_pass_object_index = True
    scene.use_nodes = True
    tree = scene.node_tree
    for node in list(tree.nodes):
        tree.nodes.remove(node)
    layers = tree.nodes.new("CompositorNodeRLayers")
    composite = tree.nodes.new("CompositorNodeComposite")
    tree.links.new(layers.outputs["Image"], composite.inputs["Image"])
    output = tree.nodes.new("CompositorNodeOutputFile")
    output.base_path = folder
    output.format.file_format = "OPEN_EXR"
    output.format.color_depth = "32"
    output.format.exr_codec = "NONE"
    output.file_slots[0].path = "index"
    tree.links.new(layers.outputs["IndexOB"], output.inputs[0])
    return output, os.path.join(folder, f"index{scene.frame_current:04d}.exr")


def pixel_counts(path, width, height, classes):
    """{pass index: (pixel count, [x1, y1, x2, y2])} from the index pass (row 0 is the bottom row: y up)."""
    image = bpy.data.images.load(path)
    if np is None:
        values = image.pixels[:]
        index = [[round(values[4 * (r * width + c)]) for c in range(width)] for r in range(height)]
    else:
        pixels = np.empty(width * height * 4, dtype=np.float32)
        image.pixels.foreach_get(pixels)
        index = np.rint(pixels[0::4]).astype(np.int32).reshape(height, width)
    bpy.data.images.remove(image)
    os.remove(path)
    result = {}
    for k in range(1, classes + 1):
        if np is None:
            hits = [(r, c) for r in range(height) for c in range(width) if index[r][c] == k]
            rows = sorted({r for r, _ in hits})
            cols = sorted({c for _, c in hits})
            count = len(hits)
        else:
            mask = index == k
            count = int(mask.sum())
            rows = np.flatnonzero(mask.any(axis=1)).tolist()
            cols = np.flatnonzero(mask.any(axis=0)).tolist()
        if count == 0:
            result[k] = (0, None)
            continue
        box = [cols[0] / width, rows[0] / height, (cols[-1] + 1) / width, (rows[-1] + 1) / height]
        result[k] = (count, box)
    return result


def render_scene(settings, index):
    scene, camera, present, rng, drawn = build(settings, index)
    scratch = os.path.join(settings["scratch"], f"{os.getpid()}")
    os.makedirs(scratch, exist_ok=True)
    output, index_path = setup_index_pass(scene, scratch)
    records = []
    placements = [
        {"name": name, "location": list(ob.matrix_world.translation), "rotation": list(ob.matrix_world.to_euler())}
        for name, ob in present
    ]
    all_views = views(settings, index, rng)
    for number, (name, yaw, pitch, distance, height) in enumerate(all_views):
        p, y = math.radians(pitch), math.radians(yaw)
        horizontal = distance * math.cos(p)
        camera.location = (horizontal * math.cos(y), horizontal * math.sin(y), height + distance * math.sin(p))
        bpy.context.view_layer.update()
        partial = os.path.join(scratch, name)
        render_view(scene, settings, output, partial)
        pixels = pixel_counts(index_path, settings["width"], settings["height"], len(present))
        objects = {}
        for k, (cls, ob) in enumerate(present, start=1):
            count, box = pixels[k]
            objects[cls] = {"projection": projection_box(scene, camera, ob), "pixels": count, "pixelBox": box}
        strip_png_metadata(partial)
        os.replace(partial, os.path.join(settings["out"], name))
        records.append({"image": name, "camera": [round(v, 6) for v in camera.location], "objects": objects})
        emit("view", scene=index, view=number, views=len(all_views), image=name)
    emit("scene", scene=index, views=records, placements=placements, environment=drawn)


def main():
    die_with_parent()
    argv = sys.argv[sys.argv.index("--") + 1 :]
    with open(argv[0]) as f:
        settings = json.load(f)
    emit("ready", protocol=PROTOCOL, blender=bpy.app.version_string)
    for line in sys.stdin:
        command = json.loads(line)
        if command.get("quit"):
            break
        try:
            render_scene(settings, command["scene"])
        except Exception as error:  # the scene fails, litter says why and stops
            import traceback

            emit("error", scene=command["scene"], message=str(error), trace=traceback.format_exc())
            break


main()
