"""The base of the pack's typed input errors, shared by motion/ and sampling/ (which never name a node).

Below nodes/, an error says what is wrong with which input and how to fix it; the node that received the input
(or patched the model that a sampler was running) adds its own name in nodes/common.py, so a user still reads
"Apply Motion Module: motion_scale ..." while the maths never knows which node called it.
"""

from __future__ import annotations


class InputError(ValueError):
    """An input the pack cannot use as given: `problem` names the input, `fix` says what to do instead."""

    def __init__(self, problem: str, fix: str = "", input: str | None = None):
        super().__init__(problem)
        self.problem, self.fix, self.input = problem, fix, input
        self.node: str | None = None  # set by the node that received the input

    def __str__(self) -> str:
        text = f"{self.problem}; {self.fix}" if self.fix else self.problem
        return f"{self.node}: {text}" if self.node else text
