/*
 * no-automount.so: an LD_PRELOAD shim for the gVisor (runsc) profiles. It
 * forwards statx() and fstatat() to glibc with AT_NO_AUTOMOUNT cleared.
 *
 * Why: the runsc that Debian bookworm ships (0.0~20221219) answers EINVAL to
 * statx() and newfstatat() whenever AT_NO_AUTOMOUNT is set, and coreutils 9.1
 * sets it in ls and stat, so `ls /tmp` and `stat f` fail inside the sandbox.
 * Clearing the flag changes nothing else: a container has no automount points
 * (and the kernel's fstatat() implies the flag anyway). A seccomp rule cannot
 * do this: this runsc answers EPERM whatever a rule's errnoRet says, and
 * glibc's fallback for a missing statx() passes the flag to fstatat() again.
 * See policies/gvisor/README.md. Built from source in each image's Dockerfile.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * Straight to the kernel (gVisor's), as glibc 2.36 itself does on x86_64 and
 * aarch64: no dlsym(), so no question of which library's constructor runs first.
 */
int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf) {
  return (int)syscall(SYS_statx, dirfd, path, flags & ~AT_NO_AUTOMOUNT, mask, buf);
}

int fstatat(int dirfd, const char *path, struct stat *buf, int flags) {
  return (int)syscall(SYS_newfstatat, dirfd, path, buf, flags & ~AT_NO_AUTOMOUNT);
}

int fstatat64(int dirfd, const char *path, struct stat64 *buf, int flags) {
  return (int)syscall(SYS_newfstatat, dirfd, path, buf, flags & ~AT_NO_AUTOMOUNT);
}
