"""What the demo runs, with defaults sized for a 2-core CPU (about 15 minutes end to end)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RECIPE = REPO_ROOT / "policies" / "demo_lift_state.yaml"
STAGES = ("collect", "train", "eval", "ros2", "report")


@dataclass(frozen=True)
class DemoConfig:
    """Every setting of one demo run; each stage records the ones it depends on, so a re-run
    resumes only when they are unchanged."""

    out_dir: Path = Path("outputs/demo")
    task: str = "lift"
    fps: float = 10.0
    demos: int = 200  # scripted-expert demonstrations (200 take about a minute)
    collect_seed: int = 1000
    recipe: Path = DEFAULT_RECIPE
    train_steps: int | None = None  # None: the recipe's
    train_minutes: float | None = None  # None: the recipe's budget
    eval_episodes: int = 20
    ros_episodes: int = 20
    eval_seed: int = 100000  # held-out seeds, far from the demonstrations'
    # eval on the training distribution (the demonstrations' randomization ranges) and on the
    # held-out real-proxy ranges; the ROS 2 loop runs the training distribution
    variants: tuple[str, ...] = ("train", "real-proxy")
    ros_variant: str = "train"
    videos: int = 2
    execution: str = "rtc"
    ros_domain_id: int = 77

    def __post_init__(self) -> None:
        for name in ("demos", "eval_episodes", "ros_episodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.fps <= 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")
        if not 0 <= self.ros_domain_id <= 232:
            raise ValueError(f"ros_domain_id {self.ros_domain_id}: must be 0-232 (Fast DDS)")
        if not Path(self.recipe).is_file():
            raise ValueError(f"recipe {self.recipe} does not exist")

    # ---- where things go -----------------------------------------------------------------------
    @property
    def store(self) -> Path:
        return self.out_dir / "demos"

    @property
    def policy_dir(self) -> Path:
        return self.out_dir / "policy"

    @property
    def stage_dir(self) -> Path:
        return self.out_dir / "stages"

    def eval_dir(self, variant: str) -> Path:
        return self.out_dir / "eval" / f"{self.task}-{variant}"

    @property
    def ros_dir(self) -> Path:
        return self.out_dir / "ros2"

    @property
    def report_dir(self) -> Path:
        return self.out_dir / "report"

    # ---- what each stage depends on ------------------------------------------------------------
    def settings(self, stage: str) -> dict[str, Any]:
        """The settings ``stage``'s result depends on (JSON-able), its own and upstream ones."""
        collect = {"task": self.task, "fps": self.fps, "demos": self.demos}
        collect["collect_seed"] = self.collect_seed
        if stage == "collect":
            return collect
        train = {
            **collect,
            "recipe": Path(self.recipe).read_text(),
            "train_steps": self.train_steps,
            "train_minutes": self.train_minutes,
        }
        if stage == "train":
            return train
        if stage == "eval":
            return {
                **train,
                "eval_episodes": self.eval_episodes,
                "eval_seed": self.eval_seed,
                "variants": list(self.variants),
                "videos": self.videos,
                "execution": self.execution,
            }
        if stage == "ros2":
            return {
                **train,
                "ros_episodes": self.ros_episodes,
                "ros_variant": self.ros_variant,
                "eval_seed": self.eval_seed,
                "execution": self.execution,
            }
        if stage == "report":
            return asdict(self) | {"out_dir": str(self.out_dir), "recipe": str(self.recipe)}
        raise ValueError(f"unknown stage {stage!r}; valid: {', '.join(STAGES)}")
