"""VisualProbe-lite scenes (scenes.py): the difficulty rules, the oracle's tile path, the view words, the pictures."""

from __future__ import annotations

import json
from functools import cache

import pytest

from mini_o3_lite import dataset, protocol, scenes, viz
from mini_o3_lite.presets import load_preset
from mini_o3_lite.scenes import Scene, SceneObject

P = load_preset("tiny")
LO, HI = P.min_pixels, P.max_pixels
COLOURS, SHAPES = P.data.colours, P.data.shapes
N_PER_DIFFICULTY = 60


@cache
def _scenes(difficulty: str) -> tuple[tuple[Scene, dict], ...]:
    """60 scenes of a difficulty from the tiny preset's test stream, with their record fields."""
    out = []
    for i in range(N_PER_DIFFICULTY):
        scene = scenes.generate(P.data.test_seed + i, difficulty, P.data.canvas, LO, HI, COLOURS, SHAPES)
        out.append((scene, dataset.record_fields(scene, LO, HI, COLOURS)))
    return tuple(out)


def _inside(inner, outer) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and inner[2] <= outer[2] and inner[3] <= outer[3]


# ---------------------------------------------------------------------------------------------- difficulty rules
@pytest.mark.parametrize("difficulty", list(scenes.DIFFICULTIES))
def test_detail_unreadable_in_full_view_readable_after_oracle_path(difficulty):
    for _, fields in _scenes(difficulty):
        detail = fields["meta"]["detail_px"]
        assert detail["full_view"] <= 2.1  # the dot is a pixel or two when the whole canvas is seen
        assert detail["after_tile_path"][-1] >= 8.0  # and a readable blob after the oracle's zooms
        assert detail["after_direct_box"] >= scenes.MARK_PX  # one well-aimed zoom is enough too
        assert fields["meta"]["target_px_full_view"] < scenes.SPOT_PX  # the target is not even a spot


@pytest.mark.parametrize(("difficulty", "depth"), [("easy", 2), ("medium", 2), ("hard", 3)])
def test_oracle_depth(difficulty, depth):
    depths = {fields["meta"]["oracle_depth"] for _, fields in _scenes(difficulty)}
    assert depths == {depth}
    assert all(len(f["meta"]["tile_path"]) == len(f["meta"]["detail_px"]["after_tile_path"]) for _, f in
               _scenes(difficulty))


def test_easy_has_no_decoys_and_no_lookalikes():
    for scene, fields in _scenes("easy"):
        target = scene.target
        others = [o for o in scene.objects if o is not target]
        assert fields["meta"]["n_decoys"] == 0 and fields["meta"]["n_same_shape"] == 0
        assert not any(o.colour == target.colour or o.shape == target.shape for o in others)
        assert 3 <= fields["meta"]["n_distractors"] <= 5


@pytest.mark.parametrize(("difficulty", "min_decoys"), [("medium", 1), ("hard", 2)])
def test_medium_and_hard_have_decoys(difficulty, min_decoys):
    for scene, fields in _scenes(difficulty):
        decoys = [o for o in scene.objects if o.role == "decoy"]
        assert len(decoys) == fields["meta"]["n_decoys"] >= min_decoys
        assert all(d.colour == scene.target.colour and d.shape != scene.target.shape for d in decoys)
        assert len(fields["meta"]["decoy_boxes"]) == len(decoys)
    distractors = [f["meta"]["n_distractors"] for _, f in _scenes(difficulty)]
    assert min(distractors) >= (6 if difficulty == "medium" else 8)


@pytest.mark.parametrize("difficulty", list(scenes.DIFFICULTIES))
def test_target_is_the_only_object_of_its_colour_and_shape(difficulty):
    for scene, _ in _scenes(difficulty):
        names = [(o.colour, o.shape) for o in scene.objects]
        assert names.count((scene.target.colour, scene.target.shape)) == 1
        assert sum(o.role == "target" for o in scene.objects) == 1


@pytest.mark.parametrize("difficulty", list(scenes.DIFFICULTIES))
def test_objects_sit_in_distinct_deepest_tiles(difficulty):
    cell = P.data.canvas // 2**scenes.LEVELS
    for scene, _ in _scenes(difficulty):
        cells = [(o.box[0] // cell, o.box[1] // cell) for o in scene.objects]
        assert len(set(cells)) == len(cells)
        assert all((o.box[2] - 1) // cell == o.box[0] // cell and (o.box[3] - 1) // cell == o.box[1] // cell
                   for o in scene.objects)  # no tile boundary cuts an object


def test_full_budget_scenes_are_read_within_the_tile_hierarchy():
    """Under Mini-o3's budget (40,000 to 2,000,000 pixels) a crop is enlarged only up to the canvas's own
    resolution, so a deeper tile stops showing more; sizes follow the scale each depth really gets, so the
    target is still hidden in the full view and its dot readable within the hierarchy's three levels."""
    full = load_preset("full")
    lo, hi = full.min_pixels, full.max_pixels
    for difficulty in scenes.DIFFICULTIES:
        for seed in range(8):
            scene = scenes.generate(seed, difficulty, full.data.canvas, lo, hi, COLOURS, SHAPES)
            meta = dataset.record_fields(scene, lo, hi, COLOURS)["meta"]
            assert meta["target_px_full_view"] < scenes.SPOT_PX
            assert 2 <= meta["oracle_depth"] <= scenes.LEVELS
            assert meta["detail_px"]["after_tile_path"][-1] >= scenes.MARK_PX


# ---------------------------------------------------------------------------------------------- the oracle's path
@pytest.mark.parametrize("difficulty", list(scenes.DIFFICULTIES))
def test_tile_path_leads_to_the_target(difficulty):
    for scene, fields in _scenes(difficulty):
        path, region = fields["meta"]["tile_path"], scenes.full_region(scene)
        for k, step in enumerate(path):
            assert step["source"] == ("original_image" if k == 0 else f"observation_{k}")
            assert step["bbox_2d"] == list(scenes.TILE_BOXES[scenes.TILE_NAMES.index(step["tile"])])
            region = scenes.sub_region(region, step["bbox_2d"])
            assert list(region) == step["region"]
            assert _inside(scene.target.box, region)
        seen = scenes.seen(scene, region, LO, HI)
        assert (scene.target, "mark") in seen
        words = scenes.describe(seen, COLOURS, SHAPES)
        target = scene.target
        assert f"{target.name} with {scenes.article(target.mark)} {target.mark} dot" in words
        # one zoom short of the end, the dot cannot be read yet
        before = scenes.seen(scene, tuple(path[-2]["region"]) if len(path) > 1 else scenes.full_region(scene), LO, HI)
        assert (target, "mark") not in before


def test_direct_box_holds_the_target():
    for difficulty in scenes.DIFFICULTIES:
        for scene, fields in _scenes(difficulty)[:20]:
            region = scenes.sub_region(scenes.full_region(scene), fields["meta"]["direct_box"])
            assert _inside(scene.target.box, region)
            assert (scene.target, "mark") in scenes.seen(scene, region, LO, HI)


# ---------------------------------------------------------------------------------------------- words for a view
def _hand_scene() -> Scene:
    def obj(colour, shape, mark, x, y, size, frac=scenes.MARK_COARSE, role="distractor"):
        return SceneObject(colour, shape, mark, (x, y, x + size, y + size), frac, role)

    objects = [
        obj("green", "circle", "orange", 20, 20, 37),  # readable with its dot
        obj("red", "square", "blue", 100, 20, 37, scenes.MARK_FINE, "target"),  # shape only: its dot is too fine
        obj("red", "circle", "yellow", 20, 100, 37, role="decoy"),  # readable with its dot
        obj("purple", "square", "red", 100, 100, 20),  # a spot
        obj("green", "square", "red", 150, 150, 20),  # a spot
        obj("blue", "circle", "red", 200, 200, 10),  # too small to see at all
        obj("yellow", "circle", "red", 600, 600, 37),  # outside the view
    ]
    return Scene(1024, objects, "medium", 0, 112)


def test_seen_levels_on_a_hand_built_scene():
    scene = _hand_scene()
    view = (0, 0, 256, 256)  # 256 canvas px -> 112 view px: 0.4375 view px per canvas px
    levels = {o.name: lv for o, lv in scenes.seen(scene, view, LO, HI)}
    assert levels == {"green circle": "mark", "red square": "shape", "red circle": "mark",
                      "purple square": "spot", "green square": "spot"}


def test_describe_order_and_wording():
    scene = _hand_scene()
    shapes = ("circle", "square")  # the hand-built scene's own vocabulary (the preset's may differ)
    words = scenes.describe(scenes.seen(scene, (0, 0, 256, 256), LO, HI), COLOURS, shapes)
    # readable objects in the preset's colour order (red, green, ...), then shape order; then spot colours
    assert words == "red circle with a yellow dot, red square, green circle with an orange dot; spots: green purple"
    assert scenes.describe(scenes.seen(scene, (512, 512, 1024, 1024), LO, HI), COLOURS, shapes) == "spots: yellow"
    only_spots = scenes.describe(scenes.seen(scene, (0, 0, 1024, 1024), LO, HI), COLOURS, shapes)
    assert only_spots == "nothing"  # the whole canvas: everything here is below a spot
    assert scenes.describe([(scene.objects[3], "spot")], COLOURS, shapes) == "spots: purple"
    assert scene.question == "What colour is the dot on the red square?" and scene.answer == "blue"


def test_lookup_line_lists_the_asked_colour():
    seen = scenes.seen(_hand_scene(), (0, 0, 256, 256), LO, HI)
    shapes = ("circle", "square")
    # red: two readable objects (shape order); green: one readable and one spot; purple: only a spot
    assert scenes.lookup(seen, "red", shapes) == "red: circle, square."
    assert scenes.lookup(seen, "green", shapes) == "green: circle, spot."
    assert scenes.lookup(seen, "purple", shapes) == "purple: spot."
    assert scenes.lookup(seen, "blue", shapes) == "blue: none."


# ---------------------------------------------------------------------------------------------- records
def test_scene_from_meta_round_trip_gives_the_same_views():
    for difficulty in scenes.DIFFICULTIES:
        for scene, fields in _scenes(difficulty)[:10]:
            meta = json.loads(json.dumps(fields["meta"]))  # as it comes back from a JSONL file
            rebuilt = scenes.scene_from_meta(meta, difficulty)
            assert rebuilt.objects == scene.objects and rebuilt.target == scene.target
            regions = [scenes.full_region(scene)] + [tuple(s["region"]) for s in meta["tile_path"]]
            regions += [scenes.sub_region(scenes.full_region(scene), b) for b in scenes.TILE_BOXES]
            for region in regions:
                assert scenes.seen(rebuilt, region, LO, HI) == scenes.seen(scene, region, LO, HI)


@pytest.mark.parametrize("canvas", [1024, 1030, 999])
def test_sub_region_matches_the_crop_tool(canvas, make_image):
    image = make_image(canvas, canvas, seed=canvas)
    for tiles in [(0, 1, 2), (3, 3, 3), (1, 2, 0), (2, 0, 3)]:
        region, view = (0, 0, canvas, canvas), image
        for i in tiles:  # nested crops of crops, as the agent makes them (observation k of observation k-1)
            region = scenes.sub_region(region, scenes.TILE_BOXES[i])
            view = protocol.crop(view, scenes.TILE_BOXES[i], min_side=1)
            assert view.size == (region[2] - region[0], region[3] - region[1])
            assert view.tobytes() == image.crop(region).tobytes()
    box = (0.13, 0.27, 0.41, 0.55)  # any relative box (the direct box is one)
    assert protocol.crop(image, box, min_side=1).tobytes() == image.crop(scenes.sub_region((0, 0, canvas, canvas),
                                                                                           box)).tobytes()


# ---------------------------------------------------------------------------------------------- errors
def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="unknown difficulty 'extreme'"):
        scenes.generate(0, "extreme", 1024, LO, HI, COLOURS, SHAPES)
    with pytest.raises(ValueError, match="known colours"):
        scenes.generate(0, "easy", 1024, LO, HI, ("red", "green", "blue", "magenta"), SHAPES)
    with pytest.raises(ValueError, match="known colours"):
        scenes.generate(0, "easy", 1024, LO, HI, ("red", "green", "blue"), SHAPES)
    with pytest.raises(ValueError, match="too small"):
        scenes.generate(0, "easy", 56, LO, HI, COLOURS, SHAPES)


# ---------------------------------------------------------------------------------------------- pictures
def test_model_view_is_the_full_view_the_sizes_are_defined_in():
    scene, _ = _scenes("easy")[0]
    image = scene.render()
    view = viz.model_view(image, LO, HI)
    assert view.size == (scene.view_side, scene.view_side) == (112, 112)
    assert viz.model_view(image, LO, HI, upscale_to=448).size == (448, 448)  # 4 x 4 blocks per model pixel
    assert image.size == (P.data.canvas, P.data.canvas)


def test_draw_boxes_outlines_a_copy():
    scene, _ = _scenes("easy")[0]
    image = scene.render()
    box = viz.relative_to_pixels((0.25, 0.25, 0.5, 0.5), *image.size)
    drawn = viz.draw_boxes(image, [box], labels=["1"], colours=[(255, 0, 255)], width=3)
    assert drawn.getpixel((256, 300)) == (255, 0, 255) and drawn is not image
    assert image.getpixel((256, 300)) != (255, 0, 255)  # the input is untouched
    with pytest.raises(ValueError, match="one label per box"):
        viz.draw_boxes(image, [box], labels=["1", "2"])
