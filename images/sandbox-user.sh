#!/bin/sh
# Shared last step of every sandbox image: the non-root sandbox user (uid/gid
# 1000) that owns /workspace, and no setuid/setgid file left anywhere, so that
# no-new-privileges is not the only thing between user code and root.
set -eu
groupadd --gid 1000 sandbox
useradd --uid 1000 --gid 1000 --home-dir /workspace --no-create-home --shell /bin/bash sandbox
mkdir -p /workspace
chown 1000:1000 /workspace
chmod 0755 /workspace
find / -xdev -type f -perm /6000 -exec chmod ug-s {} +
