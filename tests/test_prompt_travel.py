"""Prompt Travel against sd-webui-animatediff v1.x's own formulas (scripts/animatediff_prompt.py, quoted below),
the schedule formats users paste, the warnings for keyframes that cannot show, and the node on a real CLIP."""

from __future__ import annotations

import random

import pytest
import torch
from conftest import call_node, pack_module

import nodes

prompt_travel = pack_module("sampling.prompt_travel")
NODE = "AnimateFlow_PromptTravel"


def original_single_cond(prompt_map_keys, center_frame, video_length, closed_loop):
    """The original's `AnimateDiffPromptSchedule.single_cond`, keys in the prompt map's (frame) order:

        if closed_loop:
            key_prev = list(self.prompt_map.keys())[-1]
            key_next = list(self.prompt_map.keys())[0]
        else:
            key_prev = list(self.prompt_map.keys())[0]
            key_next = list(self.prompt_map.keys())[-1]
        for p in self.prompt_map.keys():
            if p > center_frame:
                key_next = p
                break
            key_prev = p
        dist_prev = center_frame - key_prev
        if dist_prev < 0:
            dist_prev += video_length
        dist_next = key_next - center_frame
        if dist_next < 0:
            dist_next += video_length
        if key_prev == key_next or dist_prev + dist_next == 0:
            return cond[key_prev]
        rate = dist_prev / (dist_prev + dist_next)
        return AnimateDiffPromptSchedule.slerp(cond[key_prev], cond[key_next], rate)

    Returns (key_prev, key_next, rate), rate None where it returns cond[key_prev].
    """
    keys = list(prompt_map_keys)
    key_prev, key_next = (keys[-1], keys[0]) if closed_loop else (keys[0], keys[-1])
    for p in keys:
        if p > center_frame:
            key_next = p
            break
        key_prev = p
    dist_prev = center_frame - key_prev
    if dist_prev < 0:
        dist_prev += video_length
    dist_next = key_next - center_frame
    if dist_next < 0:
        dist_next += video_length
    if key_prev == key_next or dist_prev + dist_next == 0:
        return key_prev, key_prev, None
    return key_prev, key_next, dist_prev / (dist_prev + dist_next)


def original_slerp(v0, v1, t, DOT_THRESHOLD=0.9995):
    """The original's `slerp`, verbatim in its arithmetic (here in float64):

        u0 = v0 / v0.norm()
        u1 = v1 / v1.norm()
        dot = (u0 * u1).sum()
        if dot.abs() > DOT_THRESHOLD:
            return (1.0 - t) * v0 + t * v1
        omega = dot.acos()
        return (((1.0 - t) * omega).sin() * v0 + (t * omega).sin() * v1) / omega.sin()
    """
    u0 = v0 / v0.norm()
    u1 = v1 / v1.norm()
    dot = (u0 * u1).sum()
    if dot.abs() > DOT_THRESHOLD:
        return (1.0 - t) * v0 + t * v1
    omega = dot.acos()
    return (((1.0 - t) * omega).sin() * v0 + (t * omega).sin() * v1) / omega.sin()


def original_prompt(head_lines, prompt, tail_lines):
    """The original's keyframe prompt: f"{', '.join(data['head_prompts'])}, {prompt}, {', '.join(data['tail_prompts'])}"."""
    return f"{', '.join(head_lines)}, {prompt}, {', '.join(tail_lines)}"


def reference_travel(encodings: dict[int, torch.Tensor], frames: int, loop: bool) -> torch.Tensor:
    """Per-frame conditioning as the original's `multi_cond` builds it: `cond[key]` is the keyframe's encoding."""
    out = []
    for f in range(frames):
        prev, nxt, rate = original_single_cond(sorted(encodings), f, frames, loop)
        v0 = encodings[prev].double()
        out.append(v0 if rate is None else original_slerp(v0, encodings[nxt].double(), rate))
    return torch.stack(out)


def _random_case(rng: random.Random):
    frames = rng.randint(1, 40)
    keys = sorted(rng.sample(range(frames), rng.randint(1, min(frames, 5))))
    return frames, keys, rng.random() < 0.5


def test_plan_matches_the_originals_single_cond_over_many_schedules():
    rng = random.Random(0)
    for _ in range(3000):
        frames, keys, loop = _random_case(rng)
        plan = prompt_travel.travel_plan(keys, frames, loop)
        for f, (prev, nxt, rate) in enumerate(plan):
            want_prev, want_next, want_rate = original_single_cond(keys, f, frames, loop)
            if want_rate is None or want_rate == 0:  # cond[key_prev] itself (slerp at rate 0 is the same vector)
                assert keys[prev] == want_prev and (prev == nxt or rate == 0), (frames, keys, loop, f)
            else:
                assert (keys[prev], keys[nxt]) == (want_prev, want_next), (frames, keys, loop, f)
                assert rate == pytest.approx(want_rate, abs=1e-12), (frames, keys, loop, f)


@pytest.mark.parametrize("seed", range(40))
def test_per_frame_is_the_originals_slerp(seed):
    rng = random.Random(seed)
    frames, keys, loop = _random_case(rng)
    gen = torch.Generator().manual_seed(seed)
    encodings = {k: torch.randn(1, 3, 8, generator=gen) for k in keys}
    if len(keys) > 1 and seed % 4 == 0:  # near-parallel neighbours take the original's straight-line branch
        encodings[keys[1]] = encodings[keys[0]] * 1.5 + 1e-3 * torch.randn(1, 3, 8, generator=gen)
    got = prompt_travel.per_frame([encodings[k] for k in keys], prompt_travel.travel_plan(keys, frames, loop))
    want = reference_travel({k: v[0] for k, v in encodings.items()}, frames, loop)
    assert got.shape == (frames, 3, 8) and got.dtype == torch.float32
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5)
    for k in keys:
        assert torch.equal(got[k], encodings[k][0]), "a keyframe's own frame is its encoding exactly"


def test_slerp_is_not_linear_and_keeps_the_arc():
    v0, v1 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    mid = prompt_travel.slerp(v0, v1, 0.5)
    torch.testing.assert_close(mid, torch.tensor([2 ** -0.5, 2 ** -0.5]))
    assert mid.norm() == pytest.approx(1.0) and (0.5 * v0 + 0.5 * v1).norm() == pytest.approx(2 ** -0.5)


def test_loop_wraps_from_the_last_keyframe_to_the_first():
    keys, frames = [4, 12], 16
    held = prompt_travel.travel_plan(keys, frames, loop=False)
    looped = prompt_travel.travel_plan(keys, frames, loop=True)
    assert held[0] == (0, 0, 0.0) and held[15] == (1, 1, 0.0)
    assert looped[0] == (1, 0, 0.5)  # 4 frames after 12 (across the wrap), 4 before 4
    assert looped[14] == (1, 0, 0.25)


def test_original_format_head_keyframes_tail():
    text = "masterpiece, best quality\nsoft light\n0: closed eyes\n8: open eyes, smiling\n16: laughing\nhighres\n8k"
    schedule = prompt_travel.parse_schedule(text)
    keyframes = prompt_travel.resolve(schedule, 24)
    head, tail = ["masterpiece, best quality", "soft light"], ["highres", "8k"]
    assert keyframes.frames == tuple((f, original_prompt(head, p, tail))
                                     for f, p in ((0, "closed eyes"), (8, "open eyes, smiling"), (16, "laughing")))
    assert keyframes.warnings == ()
    bare = prompt_travel.resolve(prompt_travel.parse_schedule("0: a cat\n4: a dog"), 8)
    assert bare.frames == ((0, "a cat"), (4, "a dog")), "no stray commas where the head or tail is empty"


@pytest.mark.parametrize("text", [
    '"0": "a cat, walking",\n"12": "a dog running",\n"23": "a bird"',
    '{\n  "0" :"a cat, walking",\n  "12" :"a dog running",\n  "23" :"a bird"\n}',
    '"0": "a cat, walking", "12": "a dog running", "23": "a bird"',
    "0: a cat, walking, 12: a dog running, 23: a bird",
    "0: a cat,\nwalking\n12: a dog running\n23: a bird",
])
def test_pasted_formats_give_the_same_keyframes(text):
    keyframes = prompt_travel.resolve(prompt_travel.parse_schedule(text), 24)
    assert keyframes.frames == ((0, "a cat, walking"), (12, "a dog running"), (23, "a bird"))


def test_negative_and_fractional_keys():
    keyframes = prompt_travel.resolve(prompt_travel.parse_schedule('"0": "a", "0.5": "b", "-1": "c", "1.0": "d"'), 16)
    assert [f for f, _ in keyframes.frames] == [0, 8, 15]
    assert keyframes.frames[-1][1] == "d" and len(keyframes.warnings) == 1 and "frame 15" in keyframes.warnings[0]


def test_warns_for_keyframes_that_cannot_show():
    crowded = prompt_travel.resolve(prompt_travel.parse_schedule('"0": "a", "0.5": "b", "0.52": "c"'), 16)
    assert [f for f, _ in crowded.frames] == [0, 8]
    assert "both land on frame 8" in crowded.warnings[0] and "'b' never shows" in crowded.warnings[0]
    beyond = prompt_travel.resolve(prompt_travel.parse_schedule("0: a\n16: b\n40: c"), 16)
    assert [f for f, _ in beyond.frames] == [0] and len(beyond.warnings) == 2
    assert "keyframe 16" in beyond.warnings[0] and "outside the 16 frames" in beyond.warnings[0]
    with pytest.raises(ValueError, match="no keyframe falls within the 4 frames"):
        prompt_travel.resolve(prompt_travel.parse_schedule("8: a\n12: b"), 4)


@pytest.mark.parametrize("text,needle", [
    ("a cat", "no keyframes"),
    ('"0:8": "a cat"', "ranges and holds"),
    ('"0": "a"\n"4:": "b"', "ranges and holds"),
])
def test_clear_errors(text, needle):
    """The node names itself; the schedule is read before the CLIP model is used."""
    with pytest.raises(ValueError, match=f"^Prompt Travel: .*{needle}.*; write") as error:
        call_node(NODE, clip=None, schedule=text, frames=16)
    assert error.value.input == "schedule"


def test_registered_from_its_own_module():
    cls = nodes.NODE_CLASS_MAPPINGS[NODE]
    assert cls.__module__.endswith("nodes.prompt_travel_nodes")


def test_node_on_a_real_clip(sd15):
    clip = sd15[1]
    text = "best quality\n0: a red cat\n0.52: lost\n4: a blue dog\n-1: a green bird\nsunny"
    cls = nodes.NODE_CLASS_MAPPINGS[NODE].PREPARE_CLASS_CLONE({})
    result = cls.EXECUTE_NORMALIZED(clip=clip, schedule=text, frames=8, loop=True)
    ((cond, extra),) = result.args[0]
    encoded = {}
    for frame, prompt in ((0, "best quality, a red cat, sunny"), (4, "best quality, a blue dog, sunny"),
                          (7, "best quality, a green bird, sunny")):
        c, pooled = clip.encode_from_tokens(clip.tokenize(prompt), return_pooled=True)
        encoded[frame] = (c[0], pooled[0])
    assert cond.shape == (8, *encoded[0][0].shape) and extra["pooled_output"].shape[0] == 8
    for frame, (c, pooled) in encoded.items():
        assert torch.equal(cond[frame], c) and torch.equal(extra["pooled_output"][frame], pooled)
    want = reference_travel({f: c for f, (c, _) in encoded.items()}, 8, loop=True)
    torch.testing.assert_close(cond.double(), want, rtol=1e-4, atol=1e-4)
    want_pooled = reference_travel({f: p for f, (_, p) in encoded.items()}, 8, loop=True)
    torch.testing.assert_close(extra["pooled_output"].double(), want_pooled, rtol=1e-4, atol=1e-4)
    report = "\n".join(result.ui.as_dict()["text"])
    assert "4: best quality, a blue dog, sunny" in report
    assert "warning: keyframes 0.52 and 4 both land on frame 4 of 8: 'lost' never shows" in report
