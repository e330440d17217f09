// The shell that checkpoints, restores, forks and diffs run inside a system
// container (the profile's image, user and hardening) with the volumes mounted
// beside /workspace: nothing of a workspace touches the gateway's disk, and
// only what changed crosses the engine's API.
//
// What makes a restore or a diff cheap is the listing a checkpoint keeps of
// the workspace as it was taken (`files`: one record per file and symlink,
// `%y %i %s %T@ %C@ %m %P` as executor/listing.ts reads them, sorted). An
// entry whose record is the same now has not been written since: no
// unprivileged process can set a ctime, and any write, chmod, rename or link
// moves it. So the records that differ are the only candidates (`comm`), and
// only they are hashed, copied or removed. Under gVisor, whose inode numbers
// and ctimes mean nothing across sandboxes, `full` makes every entry a candidate.
//
// Output goes to stdout as NUL-separated fields (parsed by checkpoint-output.ts);
// the small files of a diff, for its patches, are copied into the job's own
// /workspace and come back as the job's returned files.

export const SRC = "/airlock/src";
export const DST = "/airlock/dst";

const PRELUDE = `set -eu
export LC_ALL=C
RECORD='%y %i %s %T@ %C@ %m %P\\0'
# long LIST: LIST holds over 16 KiB of paths, where reading what a checkpoint
# keeps, or splitting the work, pays back its fixed cost (a step back does not)
long() { [ "$(wc -c < "$1")" -gt 16384 ]; }
`;

const SUMS = `# sums LIST: the sha256 of each file of LIST (NUL-separated), as sha256sum -z
# prints them. openssl's digest uses the CPU's SHA instructions, a fifth of
# sha256sum's CPU here, which counts while a restore copies beside it; but it
# takes ~10 ms to start, so a short list (a step back) stays with sha256sum.
# It prints a line per file, so a list holding a newline goes to sha256sum.
sums() {
  if long "$1" && command -v openssl > /dev/null \\
    && [ "$(tr -d -c '\\n' < "$1" | wc -c)" = 0 ]; then
    xargs -0 -r -a "$1" openssl dgst -sha256 -r | sed 's/^\\([0-9a-f]\\{64\\}\\) \\*/\\1  /' | tr '\\n' '\\0'
  else
    xargs -0 -r -a "$1" sha256sum -z --
  fi
}
`;

/**
 * describe TAG ROOT LIST HASHLIST: for each path of LIST (NUL-separated,
 * relative to ROOT): a record "type size ./path target"; sha256 of the files
 * also in HASHLIST; and the files of at most $max bytes (64 at most) copied to
 * /workspace/TAG for their patches.
 */
const DESCRIBE = `${SUMS}describe() {
  printf 'S%s\\0' "$1"
  (cd "$2" && starts "$3" -printf '%y\\0%s\\0%p\\0%l\\0')
  printf 'H%s\\0' "$1"
  # A file its user cannot read (mode 000) has no sum: the diff shows it changed.
  (cd "$2" && { starts "$4" -type f -readable -print0 > "/tmp/sums.$1" || :; sums "/tmp/sums.$1"; })
  mkdir -p "/workspace/$1"
  # head stops reading after 64: what it leaves unread ends find with SIGPIPE, not an error.
  (cd "$2" && starts "$3" -type f -readable -size -"$((max + 1))"c -print0 2>/dev/null \\
    | head -z -n 64 | xargs -0 -r cp --parents -t "/workspace/$1" --)
}
# starts LIST EXPR...: find with each path of LIST (as ./path) as a starting
# point, not descending; xargs puts the paths last, so the script rotates the
# -maxdepth and the expression behind them.
starts() {
  list=$1
  shift
  sed -z 's|^|./|' "$list" | xargs -0 -r sh -c 'n=$1; shift; i=0
    while [ "$i" -lt "$n" ]; do set -- "$@" "$1"; shift; i=$((i + 1)); done
    exec find "$@"' sh "$(($# + 2))" -maxdepth 0 "$@"
}
# recall TAG DIR LIST HASHLIST: what describe prints of a checkpoint's tree
# (DIR/tree), but from the listings and sums the checkpoint keeps (DIR/files,
# DIR/links, DIR/sums): of the tree, only LIST's small files are read, for
# their patches. A listing record's path follows its sixth space.
recall() {
  : > "/tmp/small.$1"
  awk -v tag="$1" -v max="$max" -v small="/tmp/small.$1" -v all="$([ "$3" = "$4" ] && echo 1)" '
    BEGIN { RS = ORS = OFS = "\\0"; print "S" tag }
    FILENAME == ARGV[1] { if (!($0 in want)) order[n++] = $0; want[$0] = 1; if (all) hash[$0] = 1; next }
    FILENAME == ARGV[2] { hash[$0] = 1; next }
    FILENAME == ARGV[3] { if (odd) target[path] = $0; else path = $0; odd = !odd; next }
    FILENAME == ARGV[4] {
      p = $0
      for (i = 0; i < 6; i++) p = substr(p, index(p, " ") + 1)
      if (!(p in want)) next
      print $1, $3, "./" p, ($1 == "l" ? target[p] : "")
      if ($1 == "f" && $3 <= max) fits[p] = 1
      next
    }
    !h { print "H" tag; h = 1 }
    substr($0, 69) in hash
    END {
      if (!h) print "H" tag
      # The first 64 in the order of LIST, as describe picks them.
      for (i = 0; i < n && copies < 64; i++) if (order[i] in fits) { copies++; print order[i] > small }
    }' "$3" "$4" "$2/links" "$2/files" "$2/sums"
  mkdir -p "/workspace/$1"
  (cd "$2/tree" && xargs -0 -r -a "/tmp/small.$1" cp --parents -t "/workspace/$1" --)
}
# kept TAG DIR LIST HASHLIST: describe a checkpoint's tree, from what it keeps
# when LIST is long; a short one (a step back) is read, which is quicker than
# going through every record kept, as is a checkpoint taken before they kept sums.
kept() {
  if [ -f "$2/sums" ] && long "$3"; then
    recall "$@"
  else
    describe "$1" "$2/tree" "$3" "$4"
  fi
}
# paths LISTING > OUT: the paths of a sorted listing, sorted by path
paths() { cut -z -d' ' -f7- "$1" | sort -z; }
`;

/**
 * Lists the links and special files of the tree at . (the upload rules are
 * checked on them), and writes what its user cannot read to /tmp/unreadable.
 */
const LINKS = `find . -mindepth 1 \\( -type l -printf 'l\\0%P\\0%l\\0' \\) -o \\( ! -type f ! -type d -printf '%y\\0%P\\0\\0' \\) -o \\( ! -readable -o -type d ! -executable \\) -fprintf /tmp/unreadable 'u\\0%P\\0\\0' || :`;

/** Exits 4 (UNREADABLE in checkpoints.ts), printing them, when the walk found entries it cannot read. */
const REFUSE_UNREADABLE = `[ ! -s /tmp/unreadable ] || { cat /tmp/unreadable; exit 4; }`;

/**
 * $1: bytes the tenant's checkpoints may still take. /airlock/src is the
 * workspace (read-only), /airlock/dst the new checkpoint's volume. Prints
 * "C entries bytes", exits 3 past the budget before copying anything, else
 * prints the tree's links and special files, exits 4 with the entries its
 * user cannot read (a checkpoint holds every byte or is not taken) or when
 * it has special files, and copies it with its listings.
 *
 * The copy is one `cp -a`: a single process whose file bytes the kernel
 * copies (copy_file_range), which keeps its pace where the CPUs are contended
 * far better than a tar pipe's two processes handing records over a pipe
 * (here the tar pipe ran up to several times the cp -a the target is
 * measured against). The walk stays before it (~70 ms of a 10,000-file
 * tree), so nothing is copied past the budget or of a tree that is refused.
 */
export const CHECKPOINT_SCRIPT = `${PRELUDE}
${SUMS}
budget=$1
cd ${SRC}
# One walk writes everything the checkpoint needs to know: its listings, the
# sizes, the entries an upload would refuse or its user cannot read.
: > /tmp/unreadable; : > /tmp/report; : > /tmp/special; : > /tmp/suid; : > /tmp/links
find . -mindepth 1 \\( -type d -fprintf /tmp/dirs '%m %P\\0' -fprintf /tmp/sizes 'd 0\\n' \\
    \\( -readable -executable -o -fprintf /tmp/unreadable 'u\\0%P\\0\\0' \\) \\) \\
  -o \\( -fprintf /tmp/files "$RECORD" -fprintf /tmp/sizes '%y %s\\n' \\( \\
    -type f \\( -readable -o -fprintf /tmp/unreadable 'u\\0%P\\0\\0' \\) \\
      \\( ! -perm /6000 -o -fprintf /tmp/suid '%P\\0' \\) \\
    -o -type l -fprintf /tmp/report 'l\\0%P\\0%l\\0' -fprintf /tmp/links '%P\\0%l\\0' \\
    -o -fprintf /tmp/report '%y\\0%P\\0\\0' -fprint0 /tmp/special \\) \\) || :
set -- $(awk '{ n++ } $1 == "f" { s += $2 } END { printf "%d %.0f", n, s }' /tmp/sizes)
printf 'C\\0%s\\0%s\\0' "$1" "$2"
[ "$2" -le "$budget" ] || exit 3
cat /tmp/report
${REFUSE_UNREADABLE}
# A FIFO or socket is refused (checkpoint-output.ts) before anything is copied.
[ ! -s /tmp/special ] || exit 4
# The listings are sorted while the tree is copied.
(sort -z /tmp/files > ${DST}/files && sort -z /tmp/dirs > ${DST}/dirs) &
sorted=$!
# So are the sums of its files, on the other CPU, kept with the links' targets
# so that restores and diffs name what they take without reading it again.
(grep -z '^f ' /tmp/files | cut -z -d' ' -f7- | sed -z 's|^|./|' > /tmp/sums.list \\
  && sums /tmp/sums.list > /tmp/sums) &
summed=$!
cp -a ./. ${DST}/tree
wait "$sorted"
wait "$summed"
cp /tmp/links /tmp/sums ${DST}/
# As an upload's would be: no setuid or setgid bits.
(cd ${DST}/tree && xargs -0 -r -a /tmp/suid chmod ug-s --)
`;

/**
 * $1: the staging directory's name, $2: 1 for a full restore, $3: patch size
 * cap. /airlock/src is the checkpoint (read-only), /airlock/dst the workspace.
 * Describes what will change (side a: the workspace now, b: the checkpoint),
 * copies what the checkpoint has that the workspace lacks into a staging
 * directory inside the workspace (a failure there drops it: the workspace is
 * as it was), then, in one short step, removes what changed since and moves
 * or links the staged entries in place, and puts back the directories and their modes.
 */
export const RESTORE_SCRIPT = `${PRELUDE}
${DESCRIBE}
stage=$1 full=$2 max=$3
# pcopy LIST: copies the entries LIST names (at the top of the checkpoint's
# tree) into the staging directory with one cp -a per CPU the job may use (4
# at most), each given about as many of the taken paths. One cp -a is bound by
# one CPU, mostly the kernel's: an ext4 without a journal (below) passes over
# the inodes just deleted before it gives out each new one, and after a
# workspace was emptied two cut a 10,000-file copy to about half.
pcopy() {
  n=$(nproc 2>/dev/null || echo 1)
  if [ -r /sys/fs/cgroup/cpu.max ] && read -r quota period < /sys/fs/cgroup/cpu.max && [ "$quota" != max ]; then
    q=$(((quota + period - 1) / period))
    [ "$q" -ge "$n" ] || n=$q
  fi
  [ "$n" -le 4 ] || n=4
  awk -v n="$n" 'BEGIN { RS = ORS = "\\0" }
    FILENAME == ARGV[1] { w[$0] = 1; next }
    { t = $0; sub(/\\/.*/, "", t); if (t in w) w[t]++ }
    END {
      for (i = 0; i < n; i++) { load[i] = 0; printf "" > ("/tmp/part." i) }
      for (t in w) {
        b = 0
        for (i = 1; i < n; i++) if (load[i] < load[b]) b = i
        load[b] += w[t]
        print t > ("/tmp/part." b)
      }
    }' "$1" /tmp/take.tar
  pids= i=0
  while [ "$i" -lt "$n" ]; do
    [ ! -s "/tmp/part.$i" ] || {
      (cd ${SRC}/tree && exec xargs -0 -r -a "/tmp/part.$i" cp -a -t "${DST}/$stage" --) &
      pids="$pids $!"
    }
    i=$((i + 1))
  done
  failed=0
  for p in $pids; do wait "$p" || failed=1; done
  return "$failed"
}
cd ${DST}
# One walk: the records of the files and links, and the directories with their
# modes. A directory its user cannot enter or write in (it owns them all) is
# opened first, its mode written as x: the restore gives it the checkpoint's
# mode, or removes it.
find . -mindepth 1 \\( -type d \\( -readable -writable -executable -fprintf /tmp/dirs.r '%m %P\\0' \\
  -o -fprintf /tmp/dirs.r 'x %P\\0' \\( -exec chmod u+rwx -- {} \\; -o -true \\) \\) \\) \\
  -o -printf "$RECORD" | sort -z > /tmp/now
sort -z /tmp/dirs.r > /tmp/modes.now
if [ "$full" = 1 ]; then
  cp /tmp/now /tmp/drop.r; cp ${SRC}/files /tmp/take.r
else
  comm -z -23 /tmp/now ${SRC}/files > /tmp/drop.r &
  comm -z -13 /tmp/now ${SRC}/files > /tmp/take.r
  wait $!
fi
paths /tmp/drop.r > /tmp/drop; paths /tmp/take.r > /tmp/take
comm -z -12 /tmp/drop /tmp/take > /tmp/both
# The directories above what is taken come along (before it), with their
# checkpoint's modes, so that linking them in below puts those modes back.
sed -z -n ':a s|/[^/]*$||p; ta' /tmp/take | sort -z -u - /tmp/take > /tmp/take.tar
# Both sides are described while the copy is staged, each in a process of its
# own: hashing and copying read the same files, and what a short list costs is
# mostly processes started one after another.
describe a ${DST} /tmp/drop /tmp/both > /tmp/described.a &
described=$!
kept b ${SRC} /tmp/take /tmp/take > /tmp/described.b &
kept=$!
mkdir -- "$stage"
# ext4 without a journal (this engine's disk) passes over every inode deleted
# in the last seconds (minutes, once its table block is dirty again) before it
# gives out a new one near its parent: a tree written where the workspace's
# files were just removed paid that scan for each file, several times over a
# plain copy, worse each round (3, 8, 22 s in a loop of the same copy).
# TOPDIR spreads the staged directories over the disk's groups, as for those
# at a filesystem's root: the scan is not gone (1.3-1.9 s in that loop, while
# a copy into a new volume takes ~0.7 s), but it no longer grows. Elsewhere a no-op.
chattr +T "$stage" 2>/dev/null || :
copied=0
if cmp -s /tmp/take.r ${SRC}/files; then
  # Every file comes back (a full restore, or one into an emptied workspace):
  # the whole tree, copied as the checkpoint was taken.
  grep -z -v / /tmp/take.tar > /tmp/whole || :
  pcopy /tmp/whole || copied=1
else
  # Of a long list, what the workspace lacks at its top comes back whole: one
  # cp -a of those entries (a tar pipe's two processes ran several times a
  # cp -a over a tree's 10,000 files). Only what is taken below what stays
  # goes through tar. A short list (a step back) goes through tar at once.
  : > /tmp/whole
  rest=/tmp/take.tar
  if long /tmp/take.tar; then
    { cut -z -d' ' -f7- /tmp/now; cut -z -d' ' -f2- /tmp/dirs.r; } | sed -z 's|/.*||' | sort -z -u > /tmp/top.now
    grep -z -v / /tmp/take.tar | comm -z -23 - /tmp/top.now > /tmp/whole || :
    # join needs its input in the order of the top name alone; stable, so parents stay first.
    sort -z -s -t/ -k1,1 /tmp/take.tar | join -z -t/ -v1 - /tmp/whole > /tmp/take.rest
    rest=/tmp/take.rest
  fi
  [ ! -s /tmp/whole ] || pcopy /tmp/whole || copied=1
  if [ -s "$rest" ]; then
    # A tar pipe: three times as fast as cp --parents over 10,000 paths.
    { (cd ${SRC}/tree && tar --null --verbatim-files-from --no-recursion -T "$rest" -cf -) || : > /tmp/tar.failed; } \\
      | tar -C "${DST}/$stage" -xpf - || copied=1
    [ ! -e /tmp/tar.failed ] || copied=1
  fi
fi
wait "$described" || copied=1
wait "$kept" || copied=1
# The staged directories the checkpoint has its user unable to write in are
# opened: a directory moves to another parent, takes links below it or is
# emptied only if writable. They get their modes back last (below: a walk
# above never writes such a mode, so each is one of /tmp/fix).
awk 'BEGIN { RS = ORS = "\\0" } { i = index($0, " ") } substr($0, i - 3, 1) !~ /[2367]/ { print substr($0, i + 1) }' \\
  ${SRC}/dirs > /tmp/closed
[ ! -s /tmp/closed ] || (cd "$stage" && xargs -0 -r -a /tmp/closed sh -c \\
  'for p; do [ -L "$p" ] || [ ! -d "$p" ] || chmod u+w -- "$p"; done' sh) || copied=1
if [ "$copied" != 0 ]; then
  rm -rf -- "$stage"
  exit 1
fi
cat /tmp/described.a /tmp/described.b
chmod --reference=${SRC}/tree -- "$stage"
xargs -0 -r -a /tmp/drop rm -f --
cut -z -d' ' -f2- /tmp/modes.now | sort -z > /tmp/dirs.now
cut -z -d' ' -f2- ${SRC}/dirs | sort -z > /tmp/dirs.then
comm -z -23 /tmp/dirs.now /tmp/dirs.then | xargs -0 -r rm -rf --
# What the workspace lacks at its top moves in whole, one rename each (all of
# it after the workspace was emptied); the rest is linked in below what stays.
grep -z -v / /tmp/take.tar | xargs -0 -r sh -c 'stage=$1; shift; n=$#; i=0
  while [ "$i" -lt "$n" ]; do p=$1; shift; i=$((i + 1)); [ -e "$p" ] || [ -L "$p" ] || set -- "$@" "$stage/$p"; done
  [ "$#" = 0 ] || exec mv -t . -- "$@"' sh "$stage"
cp -al "$stage/." .
rm -rf -- "$stage"
# The checkpoint's directories that were missing or of another mode when the
# restore began (no second walk): made where still missing (empty ones, which
# nothing staged brought), then given their modes, one chmod per mode.
comm -z -13 /tmp/modes.now ${SRC}/dirs > /tmp/fix
if [ -s /tmp/fix ]; then
  cut -z -d' ' -f2- /tmp/fix | xargs -0 -r mkdir -p --
  awk 'BEGIN { RS = ORS = "\\0" }
    { i = index($0, " "); print substr($0, i + 1) > ("/tmp/mode." substr($0, 1, i - 1)) }' /tmp/fix
  for f in /tmp/mode.*; do xargs -0 -r -a "$f" chmod "\${f#/tmp/mode.}" --; done
fi
`;

/**
 * $1: the source directory, $2: 1 to list its links and special files first
 * (and exit 4 with those its user cannot read), then the destinations (new
 * workspaces' volumes), each filled with a copy of it, in parallel.
 */
export const FORK_SCRIPT = `${PRELUDE}
src=$1 check=$2
shift 2
if [ "$check" = 1 ]; then
  : > /tmp/unreadable
  (cd "$src" && ${LINKS})
  ${REFUSE_UNREADABLE}
fi
pids=
for d in "$@"; do
  cp -a "$src/." "$d/" &
  pids="$pids $!"
done
fail=0
for p in $pids; do wait "$p" || fail=1; done
exit $fail
`;

/**
 * $1: "ws" when side b is a workspace, "cp" when a checkpoint; $2: 1 for a
 * full comparison; $3: patch size cap. /airlock/src is checkpoint a, /airlock/dst
 * side b, both read-only. Describes the entries whose records differ.
 */
export const DIFF_SCRIPT = `${PRELUDE}
${DESCRIBE}
kind=$1 full=$2 max=$3
if [ "$kind" = ws ]; then
  (cd ${DST} && find . -mindepth 1 ! -type d -printf "$RECORD" | sort -z) > /tmp/b
  broot=${DST}
else
  cp ${DST}/files /tmp/b
  broot=${DST}/tree
fi
if [ "$full" = 1 ]; then
  cp ${SRC}/files /tmp/a.r; cp /tmp/b /tmp/b.r
else
  comm -z -23 ${SRC}/files /tmp/b > /tmp/a.r
  comm -z -13 ${SRC}/files /tmp/b > /tmp/b.r
fi
paths /tmp/a.r > /tmp/la; paths /tmp/b.r > /tmp/lb
comm -z -12 /tmp/la /tmp/lb > /tmp/both
kept a ${SRC} /tmp/la /tmp/both
if [ "$kind" = ws ]; then describe b "$broot" /tmp/lb /tmp/lb; else kept b ${DST} /tmp/lb /tmp/lb; fi
`;
