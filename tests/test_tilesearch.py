"""The scripted tile search, driven by perfect perception (the scene's ground truth in the model's words)."""

import pytest

from mini_o3_lite import description, protocol, scenes
from mini_o3_lite.presets import load_preset
from mini_o3_lite.tilesearch import presence_in_words, target_name, tile_search

P = load_preset("tiny")


def perfect_reply(scene, region, question, verdict=None):
    """What a perfect base VLM would answer: the canonical description, then the answer.

    `verdict` replaces every presence answer word (a model that sees right and decides wrong)."""
    seen = scenes.seen(scene, region, P.min_pixels, P.max_pixels)
    thought = description.sentence(seen, P.data.colours, P.data.shapes)
    name = scene.target.name
    if question.startswith("Is there"):
        match = any(o.name == name and lv != "spot" for o, lv in seen)
        spot = any(o.colour == scene.target.colour and lv == "spot" for o, lv in seen)
        answer = verdict or ("yes" if match else "maybe" if spot else "no")
    else:
        answer = next((o.mark for o, lv in seen if o.name == name and lv == "mark"), "red")
    return protocol.assistant_text(thought, protocol.answer_text(answer))


class RegionCanvas:
    """A canvas whose crops remember their region (so the stand-in model knows where it looks)."""

    def __init__(self, image):
        self.image, self.width, self.height = image, image.width, image.height

    def crop(self, region):
        view = self.image.crop(region)
        view.info["region"] = region
        return view


def search(scene, max_zooms=64, decide="answer", verdict=None):
    gen = tile_search(RegionCanvas(scene.render()), scene.target.name, max_zooms, decide=decide)
    visits = 0
    query = next(gen)
    try:
        while True:
            question, view = query
            visits += 1
            query = gen.send(perfect_reply(scene, view.info["region"], question, verdict))
    except StopIteration as stop:
        return stop.value, visits


@pytest.mark.parametrize("decide", ["answer", "description"])
@pytest.mark.parametrize("difficulty", ["easy", "medium", "hard"])
def test_perfect_perception_finds_every_answer(difficulty, decide):
    for seed in range(8):
        scene = scenes.generate(seed, difficulty, P.data.canvas, P.min_pixels, P.max_pixels,
                                P.data.colours, P.data.shapes)
        answer, _ = search(scene, decide=decide)
        assert answer == scene.answer


def test_description_mode_reads_the_words_not_the_verdict():
    """A model that describes every view right but always answers `no`: only the description-read search finds."""
    scene = scenes.generate(5, "medium", P.data.canvas, P.min_pixels, P.max_pixels, P.data.colours, P.data.shapes)
    assert search(scene, decide="answer", verdict="no")[0] is None
    assert search(scene, decide="description", verdict="no")[0] == scene.answer


def test_presence_in_words_follows_the_teacher_rule():
    reply = protocol.assistant_text("I see red square with a green dot; spots: purple.", protocol.answer_text("no"))
    assert presence_in_words(reply, "red square") == "yes"
    assert presence_in_words(reply, "purple triangle") == "maybe"
    assert presence_in_words(reply, "green square") == "no"  # a dot's colour is not the object's
    assert presence_in_words(protocol.answer_text("yes"), "red square") is None
    with pytest.raises(ValueError, match="decide must be one of"):
        next(tile_search(RegionCanvas(scenes.generate(0, "easy", P.data.canvas, P.min_pixels, P.max_pixels,
                                                     P.data.colours, P.data.shapes).render()), "red square", 4,
                         decide="guess"))


def test_zoom_budget_stops_the_search():
    scene = scenes.generate(3, "hard", P.data.canvas, P.min_pixels, P.max_pixels, P.data.colours, P.data.shapes)
    answer, visits = search(scene, max_zooms=1)
    assert answer is None and visits <= 3


def test_target_name_parses_the_question_and_rejects_others():
    assert target_name("What colour is the dot on the purple square?") == "purple square"
    with pytest.raises(ValueError, match="not a VisualProbe-lite question"):
        target_name("How many cats?")
