"""One enumeration of how a run ends, shared by gradient flow and the discrete rules.

Every member is a plain string in results and files (``"converged"``), carries
the integer code the engine keeps on the device (``Status.CONVERGED.code``),
and the message a user reads (``Status.STEP_UNDERFLOW.message``).
"""

from __future__ import annotations

import enum
from ._validate import shown

__all__ = ["Status", "FINITE", "FINAL"]


class Status(enum.StrEnum):
    """How a run stopped (or that it is still going: :attr:`RUNNING`, never in a result)."""

    code: int
    message: str

    def __new__(cls, value: str, code: int, message: str) -> "Status":
        member = str.__new__(cls, value)
        member._value_ = value
        member.code = code
        member.message = message
        return member

    RUNNING = "running", 0, "the run is still going"
    CONVERGED = "converged", 1, "the loss or the gradient norm fell below its tolerance"
    DIVERGED = "diverged", 2, (
        "a parameter or the loss became non-finite or blew up; stop_step says when, and the run keeps its last "
        "finite state. Try a smaller step size")
    OUT_OF_TIME = "out_of_time", 3, (
        "the run reached t_max (flow) or its step budget (discrete) before converging. Try a larger t_max or steps")
    MAX_STEPS = "max_steps", 4, (
        "the adaptive integrator used its whole budget of step attempts. Try increasing max_steps")
    STEP_UNDERFLOW = "step_underflow", 5, (
        "the adaptive step shrank to round-off: a stiff or singular field")

    @classmethod
    def from_code(cls, code: int) -> "Status":
        """The member whose device code is ``code``."""
        for member in cls:
            if member.code == code:
                return member
        raise ValueError(f"no status has code {shown(code)}")


#: Outcomes a finished run can have (everything but RUNNING).
FINAL = tuple(s for s in Status if s is not Status.RUNNING)
#: Outcomes whose recorded values are trustworthy up to the run's stopping point.
FINITE = (Status.CONVERGED, Status.OUT_OF_TIME, Status.MAX_STEPS)
