"""The teleoperation recording loop: robot + teleop device -> episodes in an :class:`EpisodeStore`.

Why a separate module from the CLI: the loop is the part that must be right (what gets stamped,
what ends an episode, what survives a discard or a Ctrl-C), so it takes its robot, device, store
and operator-event sources as arguments and tests drive it with injected events.

Per tick the loop polls operator events, asks the device for an action, sends it, records the
observation it acted on with the action really executed, and sleeps to the next deadline
(:class:`~robot_learning.data.rate.RateTimer`). Everything slow is elsewhere: camera frames are
encoded by the writer's thread pool, the status line and disk-usage scan run in their own thread.
Timestamps are the robot's own (sensor time for observations, execution time for the action), so
an overrunning loop shows up as gaps in the data, never as fabricated regular stamps.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from drivers.interfaces import Robot, TeleopDevice, TeleopEvent
from robot_learning.data.collect_events import EventSource
from robot_learning.data.collect_state import Outcome, SessionConfig, SessionStats
from robot_learning.data.rate import RateTimer
from robot_learning.data.store import EpisodeStore
from robot_learning.data.writer import EpisodeWriter
from robot_learning.types import Observation

if TYPE_CHECKING:
    from robot_learning.data.rerun_live import LiveView

LOG = logging.getLogger(__name__)
ACTION_KEY = "action"
MAX_ATTEMPTS_PER_EPISODE = 10  # --successes-only: attempts allowed per wanted episode


class CollectSession:
    """Records ``config.episodes`` saved episodes from ``teleop`` driving ``robot``.

    The robot and device must be connected and the store open for appending. ``on_event`` gets
    a one-line message for every episode outcome (status display / log).
    """

    def __init__(
        self,
        robot: Robot,
        teleop: TeleopDevice,
        store: EpisodeStore,
        config: SessionConfig,
        *,
        events: Iterable[EventSource] = (),
        on_event: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        view: LiveView | None = None,
    ) -> None:
        self.robot = robot
        self.teleop = teleop
        self.store = store
        self.config = config
        self.events = list(events)
        self.on_event = on_event or (lambda msg: LOG.info("%s", msg))
        self.stats = SessionStats(episodes_target=config.episodes)
        self.timer = RateTimer(config.fps if config.realtime else 0.0, clock=clock)
        self._clock = clock
        main = [k for k in store.array_keys("observation") if k not in store.async_streams]
        self._obs_keys = main
        self._image_keys = [k for k in main if store.features[k].kind in ("rgb", "depth")]
        self._language_keys = [k for k in store.language_keys if store.roles.get(k) != "action"]
        self._writer: EpisodeWriter | None = None
        self.view = view

    # ---- session -------------------------------------------------------------------------------
    def run(self) -> SessionStats:
        """Record until enough episodes are saved or the operator stops; Ctrl-C propagates
        after the episode in progress is discarded."""
        stats = self.stats
        seed = self.config.seed + self.store.n_episodes
        max_attempts = MAX_ATTEMPTS_PER_EPISODE * self.config.episodes
        try:
            while stats.episodes_saved < self.config.episodes and not stats.stopped:
                if self.config.successes_only and stats.attempt >= max_attempts:
                    LOG.warning(
                        "stopping: %d attempts gave %d successful episodes of %d wanted "
                        "(--successes-only gives up after %d attempts per episode)",
                        stats.attempt,
                        stats.episodes_saved,
                        self.config.episodes,
                        MAX_ATTEMPTS_PER_EPISODE,
                    )
                    stats.stopped = True
                    break
                if stats.attempt and self.config.reset_time_s > 0 and not self._reset_pause():
                    break
                outcome = self._record_episode(seed)
                stats.attempt += 1
                stats.step = 0
                if outcome is not Outcome.RERECORD:
                    seed += 1
                if outcome is Outcome.STOPPED:
                    stats.stopped = True
        except KeyboardInterrupt:
            stats.interrupted = True
            raise
        finally:
            self._drop_open_episode()
            stats.phase = "done"
        return stats

    def _reset_pause(self) -> bool:
        """Give the operator ``reset_time_s`` to reset the scene; False if they stop (q)."""
        self.stats.phase = "reset"
        deadline = self._clock() + self.config.reset_time_s
        while self._clock() < deadline:
            if TeleopEvent.STOP in self._poll_events():
                self.stats.stopped = True
                self.on_event("stop requested: ending the session")
                return False
            time.sleep(0.05)
        return True

    # ---- one episode ---------------------------------------------------------------------------
    def _record_episode(self, seed: int) -> Outcome:
        stats = self.stats
        stats.episode = self.store.n_episodes
        stats.step = 0
        stats.phase = "recording"
        self.robot.reset(seed=seed)
        self.teleop.reset(seed=seed)  # may move the robot (a leader arm homing, a pre-roll)
        obs = self.robot.get_observation()
        instruction = str(getattr(self.robot, "instruction", "") or self.config.task)
        writer = self.store.new_episode(
            task=self.config.task,
            instruction=instruction,
            operator=self.config.operator,
            source=self.config.source,
            seed=seed,
        )
        self._writer = writer
        if self.view is not None:
            self.view.start_episode(stats.episode, instruction)
        waits = 0
        last_image_t = {k: -np.inf for k in self._image_keys}
        outcome, reason = Outcome.SAVED, ""
        tick_times: list[float] = []
        self.timer.start()
        overruns_before = stats.overruns
        try:
            while True:
                decision = self._operator_decision()
                if decision is not None:
                    outcome, reason = decision
                    break
                tick_times.append(self._clock())
                action = self.teleop.get_action(obs)
                executed = self.robot.send_action(action)
                values, stamps = self._step_record(obs, executed.values, executed.t_exec)
                for key in self._image_keys:
                    if stamps[key] <= last_image_t[key]:
                        stats.dropped_frames += 1
                    last_image_t[key] = stamps[key]
                writer.add_step(values, stamps)
                if self.view is not None:
                    self.view.log_step(writer.n_steps, values, stamps)
                stats.step = writer.n_steps
                stats.steps_recorded += 1
                stats.backpressure_waits += writer.backpressure_waits - waits
                waits = writer.backpressure_waits
                obs = self.robot.get_observation()
                reason = self._episode_over(writer.n_steps)
                if reason:
                    if self.config.successes_only and reason != "success":
                        outcome = Outcome.DISCARDED
                    elif self.config.auto_save:
                        outcome = Outcome.SAVED
                    else:
                        outcome = self._review(reason)
                    break
                self.timer.sleep()
                rate = self.timer.stats()
                stats.loop_rate_hz = rate.recent_hz
                stats.overruns = overruns_before + rate.overruns
                stats.max_late_ms = max(stats.max_late_ms, rate.max_late_s * 1e3)
        finally:
            if len(tick_times) > 1:
                stats.loop_s += tick_times[-1] - tick_times[0]
                stats.loop_intervals += len(tick_times) - 1
        episode_hz = _tick_rate(tick_times)
        return self._finish(
            writer, outcome, reason, seed, episode_hz, stats.overruns - overruns_before
        )

    def _step_record(
        self, obs: Observation, executed: Mapping[str, np.ndarray], t_exec: float
    ) -> tuple[dict[str, Any], dict[str, float]]:
        """The observation acted on plus the executed action, each with its own timestamp."""
        values: dict[str, Any] = {k: obs.values[k] for k in self._obs_keys}
        stamps = {k: float(obs.timestamps[k]) for k in self._obs_keys}
        for key in self._language_keys:
            if key in obs.values:
                values[key] = str(obs.values[key])
        for key, value in executed.items():
            values[key] = value
            stamps[key] = float(t_exec)
        return values, stamps

    def _episode_over(self, steps: int) -> str:
        if getattr(self.robot, "terminated", False):
            return "success" if getattr(self.robot, "is_success", False) else "terminated"
        if steps >= self.config.max_steps or getattr(self.robot, "truncated", False):
            return "max_steps"
        return ""

    def _operator_decision(self) -> tuple[Outcome, str] | None:
        events = self._poll_events()
        for event, outcome in (
            (TeleopEvent.STOP, Outcome.STOPPED),
            (TeleopEvent.RERECORD, Outcome.RERECORD),
            (TeleopEvent.DISCARD, Outcome.DISCARDED),
            (TeleopEvent.SAVE, Outcome.SAVED),
            (TeleopEvent.SAVE_FAILURE, Outcome.SAVED),
        ):
            if event in events:
                return outcome, f"operator_{event.value}"
        return None

    def _review(self, reason: str) -> Outcome:
        """The episode ended by itself and auto-save is off: wait for the operator's key."""
        self.stats.phase = (
            f"ended ({reason}): s save, f save as failure, d discard, r re-record, q stop"
        )
        while True:
            decision = self._operator_decision()
            if decision is not None:
                return decision[0]
            time.sleep(0.02)

    def _poll_events(self) -> set[TeleopEvent]:
        found: set[TeleopEvent] = set(self.teleop.events())
        for src in self.events:
            found.update(src.poll())
        return found

    def _finish(
        self,
        writer: EpisodeWriter,
        outcome: Outcome,
        reason: str,
        seed: int,
        episode_hz: float,
        overruns: int,
    ) -> Outcome:
        stats = self.stats
        if outcome is Outcome.SAVED and writer.n_steps == 0:
            outcome = Outcome.DISCARDED  # nothing recorded yet: nothing to save
        index = stats.episode
        if outcome is not Outcome.SAVED:
            writer.discard()
            self._writer = None
            if outcome is Outcome.RERECORD:
                stats.episodes_rerecorded += 1
                self.on_event(f"episode {index}: re-recording (same scene, seed {seed})")
            else:
                stats.episodes_discarded += 1
                why = "stop requested" if outcome is Outcome.STOPPED else "discarded"
                self.on_event(f"episode {index}: {why}, {writer.n_steps} step(s) dropped")
            return outcome
        stats.phase = "saving"
        success = self._success_label(reason)
        committed = writer.commit(
            success=success,
            end_reason=reason,
            loop_rate_hz=round(episode_hz, 3),
            target_hz=self.config.fps if self.config.realtime else 0.0,
            overruns=overruns,
        )
        self._writer = None
        stats.episodes_saved += 1
        stats.steps_saved += writer.n_steps
        stats.successes += bool(success)
        label = {True: "success", False: "failure", None: "unlabelled"}[success]
        self.on_event(
            f"episode {committed}: saved {writer.n_steps} steps ({label}, {reason}, "
            f"{episode_hz:.1f} Hz, {overruns} overrun(s))"
        )
        return outcome

    def _success_label(self, reason: str) -> bool | None:
        """Sim robots know success; on hardware the operator's key says it (s: success,
        f: failure) and an episode that ran out of time is unlabelled."""
        known = getattr(self.robot, "is_success", None)
        if isinstance(known, (bool, np.bool_)):
            return bool(known)
        return {"operator_save": True, "operator_save_failure": False}.get(reason)

    def _drop_open_episode(self) -> None:
        if self._writer is not None and self._writer.is_open:
            n = self._writer.n_steps
            self._writer.discard()
            self.stats.episodes_discarded += 1
            self.on_event(f"episode {self.stats.episode}: interrupted, {n} step(s) discarded")
        self._writer = None


def _tick_rate(tick_times: list[float]) -> float:
    """Achieved rate from the start times of the ticks (0 when fewer than two)."""
    if len(tick_times) < 2 or tick_times[-1] <= tick_times[0]:
        return 0.0
    return (len(tick_times) - 1) / (tick_times[-1] - tick_times[0])


__all__ = [
    "CollectSession",
    "Outcome",
    "SessionConfig",
    "SessionStats",
]
