# tracker-bridge in a container: the CLI as entrypoint, running as an unprivileged user, with git (the daemon clones,
# commits and pushes) and bubblewrap (the agent's sandbox) inside.
#
#   docker build -t tracker-bridge .
#   docker run --rm -v "$PWD/data:/data" -e ANTHROPIC_API_KEY -e JIRA_API_TOKEN tracker-bridge doctor
#   docker run -d --name tracker-bridge -v "$PWD/data:/data" -p 8787:8787 --env-file tracker-bridge.env tracker-bridge
#
# /data holds tracker-bridge.toml, the SQLite state and the workspaces. bubblewrap needs unprivileged user
# namespaces; where the container runtime forbids them (default seccomp on some hosts), `doctor` says so and runs
# fall back to resource limits; set [agent] sandbox = "bubblewrap" to refuse to start instead, or run the container
# with --security-opt seccomp=unconfined. The Claude Code CLI backend needs Node.js and the CLI: build with
# --build-arg CLAUDE_CODE=1 to include them.

FROM python:3.11-slim AS build
WORKDIR /src
COPY . .
RUN pip install --no-cache-dir "setuptools>=77" wheel \
 && pip wheel --no-cache-dir --no-deps --no-build-isolation -w /wheels .

FROM python:3.11-slim
ARG CLAUDE_CODE=0
RUN apt-get update \
 && apt-get install -y --no-install-recommends bubblewrap git ca-certificates \
 && if [ "$CLAUDE_CODE" = "1" ]; then \
      apt-get install -y --no-install-recommends nodejs npm && npm install -g @anthropic-ai/claude-code; \
    fi \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
RUN useradd --create-home --uid 10001 --user-group tracker-bridge \
 && mkdir /data && chown tracker-bridge:tracker-bridge /data
USER tracker-bridge
WORKDIR /data
VOLUME ["/data"]
ENV PYTHONUNBUFFERED=1 \
    TRACKER_BRIDGE__BRIDGE__LOG_FORMAT=json
# The dashboard, when [web] enabled = true and listen = "0.0.0.0:8787".
EXPOSE 8787
ENTRYPOINT ["tracker-bridge"]
CMD ["run", "-c", "/data/tracker-bridge.toml"]
