"""The `gha/action` node: runs a GitHub Action (JavaScript, Docker or composite) in a step."""

from __future__ import annotations

import functools
import json
import os
import shlex
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from waterflow import EnvFiles, NodeError, NodeResult, StepContext, expressions
from waterflow.commands import CommandProcessor, append_env_file, truthy
from waterflow.envfiles import EnvFileError, create_env_files, parse_env_file, read_env_files
from waterflow.shells import resolve_shell
from waterflow_nodes_gha._docker import DockerCli, container_environment
from waterflow_nodes_gha._environment import (
    action_environment,
    contexts,
    git_facts,
    runner_environment,
)
from waterflow_nodes_gha._fetch import ActionStore
from waterflow_nodes_gha._manifest import (
    CompositeStep,
    Manifest,
    input_env_name,
    load_manifest,
)
from waterflow_nodes_gha._meta import NODE_NAME, metadata
from waterflow_nodes_gha._nodejs import choose_node
from waterflow_nodes_gha._policy import check_policy
from waterflow_nodes_gha._refs import ActionRef, parse_uses
from waterflow_nodes_gha._settings import Settings

COMMIT_STATE = "waterflow_gha_commit"
"""Kept in the step's state: the commit the main stage ran, for the post stage."""
NESTED_STATE = "waterflow_gha_nested"
"""Kept in the step's state: the file on the agent that holds the post stages of the actions
a composite action used (see NestedPost)."""
MAX_DEPTH = 9
"""How deep composite actions may nest (GitHub's limit)."""


@attrs.frozen
class NestedPost:
    """The post stage of an action a composite action used, to run when the job ends: what
    its main stage ran with, and the state it saved.

    Kept in a file in the job's temp folder on the agent, not in the step's state: the state
    travels through Temporal with secrets masked, and a post stage needs its inputs whole.
    """

    uses: str
    used_by: str
    commit: str
    inputs: dict[str, str]
    post_if: str
    state: dict[str, str]


@attrs.frozen
class LoadedAction:
    """An action ready to run: its files and metadata (none for `docker://image`)."""

    ref: ActionRef
    directory: Path | None
    manifest: Manifest | None
    repository: str
    ref_name: str
    commit: str = ""  # the commit a repository action resolved to ('' when served locally)

    @property
    def label(self) -> str:
        return self.ref.uses


@attrs.frozen
class Run:
    """How running an action (or a stage of it) went."""

    exit_code: int = 0
    outputs: Mapping[str, str] = attrs.field(factory=dict)
    error: str | None = None
    #: An action used by a composite action that has a post stage: what it needs but the
    #: state its main stage saved, which the composite adds once it has read the step's files.
    post: NestedPost | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.error is None


def _string(value: Any) -> str:
    return value if isinstance(value, str) else expressions.to_string(value)


class Runtime:
    """Runs actions for one step: the step's own and those its composite actions use."""

    def __init__(self, context: StepContext, settings: Settings) -> None:
        self.context = context
        self.settings = settings
        self.log = context.log
        self.store = ActionStore(settings, context.log.info)
        self.hash_files = functools.partial(expressions.hash_files, str(context.workspace))
        self._scratch = 0
        #: The post stages of the actions the step's composite actions used, in the order
        #: their main stages ran.
        self.nested_posts: list[NestedPost] = []

    # --- loading -------------------------------------------------------------------------

    async def load(self, ref: ActionRef, commit: str = "") -> LoadedAction:
        """Fetch (or find) the action and read its metadata. Policy is checked first.

        `commit` pins a repository action to the commit its main stage ran (for its post).
        """
        check_policy(ref, self.settings)
        if ref.kind == "docker":
            return LoadedAction(ref, None, None, repository="", ref_name="")
        if ref.kind == "local":
            directory = self.context.workspace / ref.path
            manifest = load_manifest(directory, ref.uses)
            return LoadedAction(ref, directory, manifest, repository="", ref_name="")
        fetched = await self.store.fetch(attrs.evolve(ref, ref=commit) if commit else ref)
        directory = fetched.root / ref.path if ref.path else fetched.root
        if not directory.resolve().is_relative_to(fetched.root.resolve()):
            raise NodeError(f"action {ref.uses}: path leaves the repository", retryable=False)
        manifest = load_manifest(directory, ref.uses)
        return LoadedAction(
            ref,
            directory,
            manifest,
            repository=ref.repository,
            ref_name=ref.ref,
            commit=fetched.sha,
        )

    def inputs(
        self, action: LoadedAction, given: Mapping[str, Any], env: Mapping[str, str]
    ) -> dict[str, str]:
        """The action's inputs: what `with:` gave, then the metadata's defaults (rendered)."""
        values = {str(k): _string(v) for k, v in given.items()}
        manifest = action.manifest
        if manifest is None:
            return values
        declared = {i.name.lower() for i in manifest.inputs}
        unexpected = [name for name in values if name.lower() not in declared]
        if unexpected:
            valid = ", ".join(repr(i.name) for i in manifest.inputs) or "none"
            self.log.info(
                f"warning: unexpected input(s) {', '.join(map(repr, unexpected))} for "
                f"{action.label}; valid inputs are {valid}"
            )
        given_lower = {name.lower(): name for name in values}
        scope = contexts(env, inputs={})
        for item in manifest.inputs:
            provided = given_lower.get(item.name.lower())
            if provided is not None:
                if item.deprecation_message:
                    self.log.info(
                        f"warning: input {item.name!r} of {action.label} is deprecated: "
                        f"{item.deprecation_message}"
                    )
                continue
            if item.default is not None:
                try:
                    values[item.name] = expressions.render_string(
                        item.default, scope, hash_files=self.hash_files
                    )
                except expressions.ExpressionError as exc:
                    raise NodeError(
                        f"action {action.label}: default of input {item.name!r}: {exc}",
                        retryable=False,
                    ) from None
            else:
                values[item.name] = ""  # declared without a default: empty, as on GitHub
                if item.required:
                    self.log.info(
                        f"warning: input {item.name!r} of {action.label} is required and not "
                        "supplied"
                    )
        return values

    def scratch(self, what: str) -> Path:
        self._scratch += 1
        path = self.context.temp_dir / f"{what}-{self._scratch}-{uuid.uuid4().hex[:8]}"
        path.mkdir(parents=True)
        return path

    # --- running -------------------------------------------------------------------------

    async def run(
        self,
        action: LoadedAction,
        inputs: Mapping[str, str],
        env: Mapping[str, str],
        files: EnvFiles,
        *,
        phase: str = "main",
        state: Mapping[str, str] | None = None,
        depth: int = 0,
    ) -> Run:
        """Run a stage of the action (`main` with its pre, or `post`)."""
        base = action_environment(
            env,
            action_path=action.directory,
            repository=action.repository,
            ref=action.ref_name,
        )
        base.update(files.as_environment())
        manifest = action.manifest
        if manifest is None or manifest.runs.using == "docker":
            return await self._docker(action, inputs, base, files, phase, state or {})
        runs = manifest.runs
        if runs.node_major is not None:
            return await self._javascript(action, inputs, base, files, phase, state or {})
        if phase == "post":
            return Run()
        return await self._composite(action, inputs, base, files, depth)

    def _processor(self, env: Mapping[str, str], files: EnvFiles) -> CommandProcessor:
        return CommandProcessor(
            log=self.log,
            masker=self.context.masker,
            env=env,
            state_file=files.state,
            env_file=files.env,
            path_file=files.path,
        )

    def _stage_condition(
        self,
        action: LoadedAction,
        condition: str | None,
        env: Mapping[str, str],
        inputs: Mapping[str, str],
    ) -> bool:
        # A pre step runs when the job starts on GitHub, where the job status is success.
        try:
            return expressions.evaluate_condition(
                condition or "always()",
                contexts(env, inputs=inputs),
                status="success",
                hash_files=self.hash_files,
            )
        except expressions.ExpressionError as exc:
            raise NodeError(f"action {action.label}: pre-if: {exc}", retryable=False) from None

    async def _javascript(
        self,
        action: LoadedAction,
        inputs: Mapping[str, str],
        env: dict[str, str],
        files: EnvFiles,
        phase: str,
        state: Mapping[str, str],
    ) -> Run:
        assert action.manifest is not None
        assert action.directory is not None
        runs = action.manifest.runs
        major = runs.node_major
        assert major is not None
        node = await choose_node(major, self.settings, env, self.log.info)
        self.log.info(f"{action.label}: a {runs.using} action, run by node {node.version}")
        process_env = {**env, **{input_env_name(k): v for k, v in inputs.items()}}

        async def script(kind: str, relative: str, extra: Mapping[str, str]) -> Run:
            assert action.directory is not None
            path = action.directory / relative
            if not path.is_file():
                return Run(1, error=f"action {action.label}: runs.{kind} {relative!r} not found")
            processor = self._processor(env, files)
            code = await self.context.run_process(
                [str(node.path), str(path)],
                cwd=self.context.workspace,
                env={**process_env, **extra},
                on_output=processor,
            )
            if code != 0:
                return Run(code, processor.outputs, f"{kind} script exited with code {code}")
            if processor.failure:
                return Run(1, processor.outputs, processor.failure)
            return Run(0, processor.outputs)

        if phase == "post":
            if not runs.post:
                return Run()
            return await script("post", runs.post, _state_env(state))
        saved: dict[str, str] = {}
        if runs.pre:
            if self._stage_condition(action, runs.pre_if, env, inputs):
                pre = await script("pre", runs.pre, {})
                if not pre.ok:
                    return pre
                try:
                    saved = parse_env_file(
                        files.state.read_text(encoding="utf-8"), file_label="GITHUB_STATE"
                    )
                except (OSError, EnvFileError) as exc:
                    return Run(1, error=f"pre script's state: {exc}")
            else:
                self.log.info(f"pre script of {action.label} skipped: pre-if is false")
        return await script("main", runs.main or "", _state_env(saved))

    async def _docker(
        self,
        action: LoadedAction,
        inputs: Mapping[str, str],
        env: dict[str, str],
        files: EnvFiles,
        phase: str,
        state: Mapping[str, str],
    ) -> Run:
        manifest = action.manifest
        cli = DockerCli(self.settings.docker, env, self.context, action.label)
        if manifest is None:  # docker://image
            if phase == "post":
                return Run()
            image = action.ref.uses
            entrypoint: str | None = None
            arg_templates: tuple[str, ...] = ()
            runs_env: Mapping[str, str] = {}
        else:
            runs = manifest.runs
            image = runs.image or ""
            entrypoint = runs.post_entrypoint if phase == "post" else runs.entrypoint
            if phase == "post" and not entrypoint:
                return Run()
            arg_templates = runs.args
            runs_env = runs.env
        scope = contexts(env, inputs=inputs)
        try:
            args = [
                expressions.render_string(a, scope, hash_files=self.hash_files)
                for a in arg_templates
            ]
            extra_env = {
                name: expressions.render_string(value, scope, hash_files=self.hash_files)
                for name, value in runs_env.items()
            }
        except expressions.ExpressionError as exc:
            raise NodeError(f"action {action.label}: {exc}", retryable=False) from None
        # As on GitHub, `with: args` and `with: entrypoint` stand in for what the metadata
        # does not say (the only way to give them to a docker://image step).
        given = {name.lower(): value for name, value in inputs.items()}
        if not arg_templates and given.get("args"):
            try:
                args = shlex.split(given["args"])
            except ValueError as exc:
                raise NodeError(f"with: args {given['args']!r}: {exc}", retryable=False) from None
        if not entrypoint and phase == "main" and given.get("entrypoint"):
            entrypoint = given["entrypoint"]
        await cli.check_engine()
        if image.startswith("docker://"):
            tag = image[len("docker://") :]
            await cli.ensure_image(tag)
        else:
            assert action.directory is not None
            name = action.repository + (f"-{action.ref.path}" if action.ref.path else "")
            tag = await cli.build(action.directory / image, name or action.ref.path or "local")
        process_env = {
            **env,
            **{input_env_name(k): v for k, v in inputs.items()},
            **extra_env,
            **_state_env(state),
        }
        container_env = container_environment(process_env, os.environ, files)

        async def stage(kind: str, point: str | None) -> Run:
            processor = self._processor(env, files)
            code = await cli.run(
                tag,
                entrypoint=point,
                args=args,
                container_env=container_env,
                files=files,
                event_path=env.get("GITHUB_EVENT_PATH"),
                network=self.settings.docker_network,
                on_output=processor,
            )
            if code != 0:
                return Run(code, processor.outputs, f"{kind} container exited with code {code}")
            if processor.failure:
                return Run(1, processor.outputs, processor.failure)
            return Run(0, processor.outputs)

        if phase == "post":
            return await stage("post-entrypoint", entrypoint)
        if manifest is not None and manifest.runs.pre_entrypoint:
            if self._stage_condition(action, manifest.runs.pre_if, env, inputs):
                pre = await stage("pre-entrypoint", manifest.runs.pre_entrypoint)
                if not pre.ok:
                    return pre
            else:
                self.log.info(f"pre-entrypoint of {action.label} skipped: pre-if is false")
        return await stage("main", entrypoint)

    async def _composite(
        self,
        action: LoadedAction,
        inputs: Mapping[str, str],
        env: dict[str, str],
        files: EnvFiles,
        depth: int,
    ) -> Run:
        assert action.manifest is not None
        if depth >= MAX_DEPTH:
            raise NodeError(
                f"action {action.label}: composite actions nest more than {MAX_DEPTH} deep",
                retryable=False,
            )
        steps: dict[str, dict[str, Any]] = {}
        status = "success"
        error: str | None = None
        current = dict(env)
        for step in action.manifest.runs.steps:
            key = step.id or f"__{step.index + 1}"
            scope = {**contexts(current, inputs=inputs), "steps": steps}
            scope["job"] = {"status": status}
            try:
                run_it = expressions.evaluate_condition(
                    step.if_, scope, status=status, hash_files=self.hash_files
                )
            except expressions.ExpressionError as exc:
                error = error or f"{action.label} step {step.label}: if: {exc}"
                status = "failure"
                steps[key] = {"outputs": {}, "outcome": "failure", "conclusion": "failure"}
                continue
            if not run_it:
                steps[key] = {"outputs": {}, "outcome": "skipped", "conclusion": "skipped"}
                continue
            inner_files = create_env_files(self.scratch("composite-files"))
            result = await self._composite_step(action, step, scope, current, inner_files, depth)
            outputs = dict(result.outputs)
            try:
                written = read_env_files(inner_files)
            except EnvFileError as exc:
                result = Run(1, outputs, str(exc))
            else:
                if result.post is not None:
                    self.nested_posts.append(attrs.evolve(result.post, state=written.state))
                outputs.update(written.outputs)
                for name, value in written.env.items():
                    current[name] = value
                    append_env_file(files.env, name, value)
                if written.path:
                    current["PATH"] = os.pathsep.join(
                        [*reversed(written.path), current.get("PATH", "")]
                    )
                    with files.path.open("a", encoding="utf-8") as f:
                        f.writelines(p + "\n" for p in written.path)
                if written.summary:
                    with files.step_summary.open("a", encoding="utf-8") as f:
                        f.write(written.summary)
            outcome = "success" if result.ok else "failure"
            conclusion = outcome
            if not result.ok:
                reason = result.error or f"exit code {result.exit_code}"
                self.log.info(f"{action.label} step {step.label} failed: {reason}")
                if self._continue_on_error(step, scope, status):
                    conclusion = "success"
                else:
                    status = "failure"
                    error = error or f"{action.label} step {step.label} failed: {reason}"
            steps[key] = {"outputs": outputs, "outcome": outcome, "conclusion": conclusion}
        scope = {**contexts(current, inputs=inputs), "steps": steps, "job": {"status": status}}
        outputs = {}
        for output in action.manifest.outputs:
            if output.value is None:
                continue
            try:
                outputs[output.name] = expressions.render_string(
                    output.value, scope, status=status, hash_files=self.hash_files
                )
            except expressions.ExpressionError as exc:
                error = error or f"{action.label} output {output.name!r}: {exc}"
                status = "failure"
        if status != "success":
            return Run(1, outputs, error or f"{action.label} failed")
        return Run(0, outputs)

    async def _nested(
        self,
        action: LoadedAction,
        uses: str,
        label: str,
        with_: Mapping[str, str],
        env: Mapping[str, str],
        files: EnvFiles,
        depth: int,
    ) -> Run:
        self.log.info(f"[{action.label}] step {label}: uses {uses}")
        try:
            nested = await self.load(parse_uses(uses))
            nested_inputs = self.inputs(nested, with_, env)
            run = await self.run(nested, nested_inputs, env, files, depth=depth + 1)
        except NodeError as exc:
            return Run(1, error=exc.message)
        if nested.manifest is not None and nested.manifest.runs.has_post:
            # As on GitHub: a main stage that ran, failed or not, gets its post stage.
            post = NestedPost(
                uses=uses,
                used_by=action.label,
                commit=nested.commit,
                inputs=dict(nested_inputs),
                post_if=nested.manifest.runs.post_if or "always()",
                state={},
            )
            return attrs.evolve(run, post=post)
        return run

    async def nested_post_stages(
        self, posts: list[NestedPost], env: Mapping[str, str], files: EnvFiles
    ) -> Run:
        """Run the post stages of the actions a composite action used, the last used first,
        each when its post-if holds; one failing does not keep the others from running."""
        status = self.context.step.job_status or "success"
        failed: list[str] = []
        for post in reversed(posts):
            label = f"post stage of {post.uses} (used by {post.used_by})"
            try:
                run_it = expressions.evaluate_condition(
                    post.post_if,
                    contexts(env, inputs=post.inputs),
                    status=status,
                    hash_files=self.hash_files,
                )
                if not run_it:
                    self.log.info(f"{label} skipped: post-if is false")
                    continue
                self.log.info(label)
                action = await self.load(parse_uses(post.uses), commit=post.commit)
                run = await self.run(
                    action, post.inputs, env, files, phase="post", state=post.state
                )
            except expressions.ExpressionError as exc:
                run = Run(1, error=f"post-if: {exc}")
            except NodeError as exc:
                run = Run(1, error=exc.message)
            if not run.ok:
                reason = run.error or f"exit code {run.exit_code}"
                self.log.info(f"{label} failed: {reason}")
                failed.append(f"{label}: {reason}")
        if failed:
            return Run(1, error="; ".join(failed))
        return Run()

    def _continue_on_error(
        self, step: CompositeStep, scope: Mapping[str, Any], status: str
    ) -> bool:
        if step.continue_on_error is None:
            return False
        try:
            value = expressions.render(
                step.continue_on_error, scope, status=status, hash_files=self.hash_files
            )
        except expressions.ExpressionError as exc:
            self.log.info(f"continue-on-error: {exc}")
            return False
        return value is True or truthy(_string(value))

    async def _composite_step(
        self,
        action: LoadedAction,
        step: CompositeStep,
        scope: Mapping[str, Any],
        env: Mapping[str, str],
        files: EnvFiles,
        depth: int,
    ) -> Run:
        status = str(scope["job"]["status"])

        def render(text: str) -> str:
            return expressions.render_string(text, scope, status=status, hash_files=self.hash_files)

        try:
            step_env = {**env, **{name: render(v) for name, v in step.env.items()}}
            if step.uses is not None:
                with_ = {name: render(v) for name, v in step.with_.items()}
                return await self._nested(
                    action, step.uses, step.label, with_, step_env, files, depth
                )
            script = render(step.run or "")
            shell = render(step.shell) if step.shell else None
            directory = render(step.working_directory) if step.working_directory else None
        except expressions.ExpressionError as exc:
            return Run(1, error=str(exc))
        try:
            return await self._run_script(action, step, script, shell, directory, step_env, files)
        except NodeError as exc:
            return Run(1, error=exc.message)

    async def _run_script(
        self,
        action: LoadedAction,
        step: CompositeStep,
        script: str,
        shell: str | None,
        directory: str | None,
        env: Mapping[str, str],
        files: EnvFiles,
    ) -> Run:
        command = resolve_shell(shell, env.get("PATH"))
        cwd = self.context.workspace / directory if directory else self.context.workspace
        if not cwd.is_dir():
            return Run(1, error=f"working-directory {directory!r} does not exist")
        script_file = self.scratch("composite-script") / f"script{command.extension}"
        script_file.write_text(script, encoding="utf-8")
        first = script.strip().splitlines()[0] if script.strip() else ""
        self.log.info(f"[{action.label}] step {step.label}: run {first}")
        process_env = {
            **env,
            "GITHUB_ACTION_PATH": str(action.directory or ""),
            **files.as_environment(),
        }
        processor = self._processor(process_env, files)
        code = await self.context.run_process(
            command.argv(script_file),
            cwd=cwd,
            env=process_env,
            on_output=processor,
        )
        if code != 0:
            return Run(code, processor.outputs, f"process exited with code {code}")
        if processor.failure:
            return Run(1, processor.outputs, processor.failure)
        return Run(0, processor.outputs)


def _state_env(state: Mapping[str, str]) -> dict[str, str]:
    return {f"STATE_{name}": value for name, value in state.items()}


def _is_checkout(ref: ActionRef) -> bool:
    return (
        ref.kind == "repository" and ref.repository.lower() == "actions/checkout" and not ref.path
    )


class GhaAction:
    """Executor of `gha/action`."""

    async def execute(self, params: Mapping[str, Any], context: StepContext) -> NodeResult:
        settings = Settings.from_environ()
        if settings.token:
            context.masker.add(settings.token)
        ref = parse_uses(context.step.uses)
        check_policy(ref, settings)  # before anything is fetched
        runtime = Runtime(context, settings)
        git = await git_facts(context.workspace)
        env = runner_environment(
            context.env,
            settings=settings,
            git=git,
            workspace=context.workspace,
            temp_dir=Path(context.env.get("RUNNER_TEMP") or context.temp_dir),
        )
        if _is_checkout(ref):
            skipped = self._checkout(ref, params, context, settings, env)
            if skipped is not None:
                return skipped
        post = context.step.phase == "post"
        state = dict(context.state)
        # The post stage runs the commit the main stage ran, even if the ref moved since.
        commit = state.pop(COMMIT_STATE, "") if post else ""
        nested = state.pop(NESTED_STATE, "") if post else ""
        action = await runtime.load(ref, commit=commit)
        inputs = runtime.inputs(action, params, env)
        if post:
            result = await runtime.run(
                action, inputs, env, context.files, phase="post", state=state
            )
            if nested:
                result = await self._nested_posts(runtime, Path(nested), env, action.label)
        else:
            manifest = action.manifest
            if manifest is not None and manifest.runs.has_post:
                context.add_post_step(manifest.runs.post_if or "always()")
            result = await runtime.run(action, inputs, env, context.files)
            has_post = manifest is not None and manifest.runs.has_post
            if (has_post or runtime.nested_posts) and action.commit:
                append_env_file(context.files.state, COMMIT_STATE, action.commit)
            if runtime.nested_posts:
                # A composite action (which has no post stage of its own): the post step runs
                # those of the actions it used, each deciding by its own post-if.
                kept = self._keep_nested_posts(runtime.nested_posts, context)
                context.add_post_step("always()")
                append_env_file(context.files.state, NESTED_STATE, str(kept))
        return NodeResult(
            outputs=dict(result.outputs), exit_code=result.exit_code, error=result.error
        )

    @staticmethod
    def _keep_nested_posts(posts: list[NestedPost], context: StepContext) -> Path:
        """Write the post stages to run to a file of the job's temp folder on this agent,
        readable by its user only (their inputs may hold secrets)."""
        folder = Path(context.env.get("RUNNER_TEMP") or context.temp_dir) / "_waterflow_gha"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = folder / f"post-{uuid.uuid4().hex}.json"
        text = json.dumps([attrs.asdict(p) for p in posts])
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    @staticmethod
    async def _nested_posts(runtime: Runtime, path: Path, env: dict[str, str], label: str) -> Run:
        why = ""
        try:
            records = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            # The job moved to another agent after its main step, which keeps the record.
            why = "is not on this agent (the main step ran on another)"
        except (OSError, ValueError) as exc:
            why = f"cannot be read: {exc.strerror if isinstance(exc, OSError) else exc}"
        if why:
            runtime.log.info(
                f"the post stages of the actions {label} used do not run: their record {path} {why}"
            )
            return Run()
        path.unlink(missing_ok=True)
        posts = [NestedPost(**record) for record in records]
        return await runtime.nested_post_stages(posts, env, runtime.context.files)

    @staticmethod
    def _checkout(
        ref: ActionRef,
        params: Mapping[str, Any],
        context: StepContext,
        settings: Settings,
        env: Mapping[str, str],
    ) -> NodeResult | None:
        """As act does: the workspace is the checkout of its own repository when local."""
        if settings.checkout == "action":
            return None
        is_git = (context.workspace / ".git").exists()
        if settings.checkout == "auto" and not is_git:
            return None
        wanted = _string(params.get("repository") or "").strip()
        own = env.get("GITHUB_REPOSITORY", "")
        if wanted and wanted.lower() != own.lower():
            return None
        if context.step.phase == "post":
            return NodeResult()
        context.log.info(
            f"{ref.uses}: the workspace {context.workspace} is the repository's own checkout "
            "here; not checking out again (WATERFLOW_GHA_CHECKOUT=action runs the action)"
        )
        outputs = {"ref": env.get("GITHUB_REF", ""), "commit": env.get("GITHUB_SHA", "")}
        return NodeResult(outputs={k: v for k, v in outputs.items() if v})


__all__ = ["NODE_NAME", "GhaAction", "LoadedAction", "Run", "Runtime", "metadata"]
