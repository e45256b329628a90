"""Cost of one Mini-o3 style conversation on the tiny model: forward and generate, 1 turn vs 6 turns.

Prints the parameter count, the wall time of a forward pass and of generating one 32-token turn
for a conversation with 1 and with 6 zoom-in turns (7 images), and the 6-turn / 1-turn ratios.

    python benchmarks/conversation_cost.py [--model PATH] [--repeats 5]
"""

import argparse
import time

import torch

from mini_o3_lite import description, modeling, protocol, scenes
from mini_o3_lite.presets import load_preset


def conversation(turns: int, preset) -> tuple[list[dict], list]:
    """A scene, then `turns` tile zooms along the oracle path (cycled), as the agent would see them."""
    data = preset.data
    scene = scenes.generate(0, "hard", data.canvas, preset.min_pixels, preset.max_pixels, data.colours, data.shapes)
    canvas, region = scene.render(), scenes.full_region(scene)
    messages, images = protocol.messages_for(scene.question), [canvas]
    for t in range(turns):
        box = scenes.TILE_BOXES[t % 4]
        call = protocol.tool_call_text(box, protocol.source_name(t))
        thought = description.of_view(scene, region, preset)[0]
        turn = protocol.assistant_text(thought, call)
        messages.append({"role": "assistant", "content": [{"type": "text", "text": turn}]})
        region = scenes.sub_region(region, box)
        images.append(canvas.crop(region))
        messages.append(protocol.observation_message(t + 1))
    return messages, images


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="checkpoint directory (default: the shipped tiny base VLM)")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    preset = load_preset("tiny")
    model, processor = modeling.load(modeling.model_path(args.model))
    model.eval()
    print(f"parameters: {modeling.count_parameters(model)}")
    results = {}
    for turns in (1, 6):
        messages, images = conversation(turns, preset)
        text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        batch = processor(text=[text], images=images, return_tensors="pt")
        with torch.no_grad():
            fwd = timed(lambda b=batch: model(**b), args.repeats)
            gen = timed(lambda b=batch: model.generate(**b, max_new_tokens=32, min_new_tokens=32, do_sample=False),
                        args.repeats)
        results[turns] = (fwd, gen)
        print(f"{turns} turn(s): {batch['input_ids'].shape[1]} tokens, {len(images)} images, "
              f"forward {fwd * 1000:.0f} ms, generate 32 tokens {gen * 1000:.0f} ms")
    print(f"ratio 6 turns / 1 turn: forward {results[6][0] / results[1][0]:.2f}x, "
          f"generate {results[6][1] / results[1][1]:.2f}x")


if __name__ == "__main__":
    main()
