"""What the docker nodes are: names, parameters and outputs. Cheap: imports no Docker SDK."""

from __future__ import annotations

import importlib.metadata

from waterflow import NodeMetadata, Output, Parameter

DISTRIBUTION = "waterflow-nodes-docker"
BUILD = "docker/build"
PUSH = "docker/push"
RUN = "docker/run"

WORKSPACE_MOUNT = "/github/workspace"
"""Where docker/run mounts the job's workspace, as GitHub's runner does."""

FILE_COMMANDS_MOUNT = "/github/file_commands"
"""Where docker/run mounts the step's env files ($GITHUB_OUTPUT and the others)."""

_DOCKER_HOST = Parameter(
    "docker-host",
    description=(
        "The Docker engine to use, e.g. unix:///var/run/docker.sock or tcp://host:2376. "
        "Default: DOCKER_HOST of the step's environment (with DOCKER_TLS_VERIFY and "
        "DOCKER_CERT_PATH), else unix:///var/run/docker.sock."
    ),
)


def _version() -> str:
    return importlib.metadata.version(DISTRIBUTION)


def build_metadata() -> NodeMetadata:
    return NodeMetadata(
        name=BUILD,
        version=_version(),
        description=(
            "Build an image from a Dockerfile in the workspace. The build's log streams into "
            "the step log as it runs."
        ),
        parameters=(
            Parameter(
                "context",
                default=".",
                description="The build context: a directory relative to the workspace, or "
                "absolute. Its .dockerignore is honoured.",
            ),
            Parameter(
                "dockerfile",
                description="The Dockerfile, relative to the workspace or absolute; it may lie "
                "outside the context. Default: Dockerfile in the context.",
            ),
            Parameter(
                "tags",
                description="Names to give the image (name or name:tag, e.g. "
                "127.0.0.1:5000/app:1.0), separated by commas or newlines.",
            ),
            Parameter(
                "build-args",
                type="object",
                description="Values of the Dockerfile's ARG instructions, e.g. {VERSION: 1.2}.",
            ),
            Parameter("labels", type="object", description="Labels to put on the image."),
            Parameter("target", description="The stage of a multi-stage Dockerfile to build."),
            Parameter(
                "no-cache", type="boolean", default=False, description="Build without the cache."
            ),
            Parameter(
                "pull",
                type="boolean",
                default=False,
                description="Pull newer versions of the base images even when they are present.",
            ),
            _DOCKER_HOST,
        ),
        outputs=(
            Output("image-id", "The built image's id (sha256:...)."),
            Output("tags", "The names given to the image, separated by commas."),
        ),
    )


def push_metadata() -> NodeMetadata:
    return NodeMetadata(
        name=PUSH,
        version=_version(),
        description=(
            "Push an image to its registry. Credentials come from parameters the workflow fills "
            "from secrets; they are never logged."
        ),
        parameters=(
            Parameter(
                "image",
                required=True,
                description="The image to push: a name (name:tag) or an id of an image on the "
                "engine.",
            ),
            Parameter(
                "tags",
                description="The references to push the image as (registry/name:tag), "
                "separated by commas or newlines; each is tagged onto the image first. "
                "Default: image itself.",
            ),
            Parameter(
                "username",
                description="The registry user, e.g. ${{ secrets.REGISTRY_USER }}. Default: "
                "push without credentials.",
            ),
            Parameter(
                "password",
                description="The registry password or token, e.g. ${{ secrets.REGISTRY_TOKEN }}. "
                "Masked in every log.",
            ),
            _DOCKER_HOST,
        ),
        outputs=(Output("digest", "The digest the registry gave the pushed image (sha256:...)."),),
    )


def run_metadata() -> NodeMetadata:
    return NodeMetadata(
        name=RUN,
        version=_version(),
        description=(
            "Run a command in a container. The workspace is mounted at /github/workspace; the "
            "container's output streams into the step log and its exit code is the step's. The "
            "container is removed afterwards, and stopped and removed when the step is "
            "cancelled or times out."
        ),
        parameters=(
            Parameter("image", required=True, description="The image to run, e.g. alpine:3.20."),
            Parameter(
                "command",
                description="The command, split into words as a shell would (without "
                "expansion), replacing the image's CMD. Use 'sh -c \"...\"' for shell syntax.",
            ),
            Parameter(
                "args",
                type="array",
                description="The command as a list of words, passed as they are (instead of "
                "command).",
            ),
            Parameter(
                "entrypoint",
                description="Replaces the image's ENTRYPOINT (split into words like command).",
            ),
            Parameter(
                "env",
                type="object",
                description="Environment variables of the container. The step's own env is not "
                "passed in; the runner's CI, GITHUB_* and RUNNER_* variables are.",
            ),
            Parameter(
                "working-directory",
                description="Where the command runs in the container: absolute, or relative to "
                "/github/workspace. Default: /github/workspace when the workspace is mounted, "
                "else the image's WORKDIR.",
            ),
            Parameter("user", description="The user (name, uid or uid:gid) to run as."),
            Parameter(
                "network",
                description="The network to attach the container to (e.g. none, host, or a "
                "network's name). Default: the engine's default.",
            ),
            Parameter(
                "volumes",
                type="array",
                description="Extra mounts, each 'src:dst' or 'src:dst:ro'; src is a path "
                "(relative to the workspace, or absolute) or a volume's name.",
            ),
            Parameter(
                "mount-workspace",
                type="boolean",
                default=True,
                description="Mount the job's workspace at /github/workspace.",
            ),
            Parameter(
                "pull",
                default="missing",
                enum=("missing", "always", "never"),
                description="When to pull the image: only when it is missing on the engine, "
                "always, or never.",
            ),
            Parameter(
                "init",
                type="boolean",
                default=True,
                description="Run a tiny init as PID 1 that passes signals on and reaps zombies, "
                "so the command stops promptly when the step is cancelled.",
            ),
            _DOCKER_HOST,
        ),
        outputs=(Output("exit-code", "The container's exit code."),),
    )


def all_metadata() -> list[NodeMetadata]:
    return [build_metadata(), push_metadata(), run_metadata()]
