"""Every touch of a ComfyUI internal, in one place, by concern, so the next host change is fixed in one file.

- `wrappers`: ModelPatcher wrappers (kinds, order) and the arguments of a wrapped host call, by name;
- `models`: model patching (patchers, injections, LoRA patches), UNet blocks, layer ops and attention;
- `sampling`: sampler objects, beta schedules, the context-window contract, memory and interrupts;
- `execution`: running nodes (progress bars, blocking, interrupts, V3 class clones, command-line flags);
- `folders`: the host's model, input, output and temp folders;
- `server`: the running server, messages to the editor, the prompt check, latent previews;
- `node_replace`: node replacements (ComfyUI 0.14 and later);
- `self_check`: at start-up, one log line per internal this host lacks, from every module's `NEEDS`.

Modules of the pack below `nodes/` import ComfyUI only through here; the public V3 node schema (`comfy_api.latest`
`io`, `ui`) stays imported directly by `nodes/`. tests/test_host_internals*.py pin each internal, one test each.
"""
