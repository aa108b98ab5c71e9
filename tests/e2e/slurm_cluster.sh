# A private Slurm cluster on this machine, for the slurm tests: munged, slurmctld and one or more
# slurmd in a temporary folder, on free ports. Source it, then `slurm_start DIR [NODES]`; the
# caller's EXIT trap calls `slurm_stop`, which ends only the daemons started here, by PID.
#   slurm_start DIR 1   one node "localhost"
#   slurm_start DIR 2   two nodes n1, n2 (two slurmd on 127.0.0.1), where Slurm allows it
# Needs root (the daemons run as root); installs the packages when missing.

slurm_install() {
  local missing=()
  for p in slurmctld slurmd slurm-client munge; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  echo "slurm: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 \
    "${missing[@]}" >/dev/null
}

# free_port: a TCP port nobody listens on.
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    ss -ltnH "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return; }
  done
}

slurm_pids=()
slurm_start() {
  SLURM_DIR=$1
  local nodes=${2:-1}
  mkdir -p "$SLURM_DIR"/{state,spool}
  export SLURM_CONF=$SLURM_DIR/slurm.conf
  local cpus
  cpus=$(nproc)
  # munged with its own key and socket: nothing of the system's munge is used or changed.
  dd if=/dev/urandom of="$SLURM_DIR/munge.key" bs=1024 count=1 status=none
  chmod 0400 "$SLURM_DIR/munge.key"
  /usr/sbin/munged --force --key-file="$SLURM_DIR/munge.key" --socket="$SLURM_DIR/munge.sock" \
    --pid-file="$SLURM_DIR/munged.pid" --log-file="$SLURM_DIR/munged.log" --seed-file="$SLURM_DIR/munged.seed" ||
    { echo "slurm: munged did not start: $(tail -3 "$SLURM_DIR/munged.log")"; return 1; }
  slurm_pids+=("$(cat "$SLURM_DIR/munged.pid")")
  local ctld_port
  ctld_port=$(free_port)
  cat >"$SLURM_CONF" <<CONF
ClusterName=kervan-test
MailProg=/bin/true
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SLURM_DIR/munge.sock
SlurmctldPort=$ctld_port
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool/%n
SlurmctldPidFile=$SLURM_DIR/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/slurmd-%n.pid
SlurmctldLogFile=$SLURM_DIR/slurmctld.log
SlurmdLogFile=$SLURM_DIR/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=300
Waittime=0
CONF
  local names=()
  if ((nodes == 1)); then
    echo "NodeName=localhost NodeAddr=127.0.0.1 Port=$(free_port) CPUs=$cpus Sockets=1 CoresPerSocket=$cpus ThreadsPerCore=1 RealMemory=2000 State=UNKNOWN" >>"$SLURM_CONF"
    names=(localhost)
  else
    for i in $(seq 1 "$nodes"); do
      echo "NodeName=n$i NodeHostname=localhost NodeAddr=127.0.0.1 Port=$(free_port) CPUs=$cpus Sockets=1 CoresPerSocket=$cpus ThreadsPerCore=1 RealMemory=2000 State=UNKNOWN" >>"$SLURM_CONF"
      names+=("n$i")
    done
  fi
  echo "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO" >>"$SLURM_CONF"
  /usr/sbin/slurmctld -f "$SLURM_CONF" || { echo "slurm: slurmctld did not start"; return 1; }
  local i
  for i in $(seq 1 50); do [[ -s $SLURM_DIR/slurmctld.pid ]] && break; sleep 0.1; done
  slurm_pids=("$(cat "$SLURM_DIR/slurmctld.pid")" "${slurm_pids[@]}")
  for i in $(seq 1 100); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.2; done
  local n
  for n in "${names[@]}"; do
    mkdir -p "$SLURM_DIR/spool/$n"
    /usr/sbin/slurmd -f "$SLURM_CONF" -N "$n" || { echo "slurm: slurmd $n did not start: $(tail -3 "$SLURM_DIR/slurmd-$n.log" 2>/dev/null)"; return 1; }
    for i in $(seq 1 50); do [[ -s $SLURM_DIR/slurmd-$n.pid ]] && break; sleep 0.1; done
    slurm_pids=("$(cat "$SLURM_DIR/slurmd-$n.pid")" "${slurm_pids[@]}")
  done
  # Every node idle.
  for i in $(seq 1 150); do
    (($(sinfo -h -N -t idle -o %N 2>/dev/null | sort -u | wc -l) == nodes)) && return 0
    sleep 0.2
  done
  echo "slurm: the nodes did not come up: $(sinfo -N 2>&1 | tail -3)"
  return 1
}

# slurm_stop: cancels the jobs, then ends slurmd(s), slurmctld and munged (the PIDs started here).
slurm_stop() {
  [[ -n ${SLURM_CONF:-} && -f $SLURM_CONF ]] && scancel --quiet --full --user="$(id -un)" 2>/dev/null
  local p i
  for p in "${slurm_pids[@]}"; do
    kill -TERM "$p" 2>/dev/null || continue
    for i in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
  done
  slurm_pids=()
}

# job_state JOB: PENDING, RUNNING, COMPLETED, ...
job_state() { scontrol show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2; }
job_field() { scontrol show job "$1" 2>/dev/null | grep -o " $2=[^ ]*" | cut -d= -f2; }
# wait_job JOB SECONDS: until the job has ended (any final state); prints the state.
wait_job() {
  local s i
  for i in $(seq 1 $(($2 * 5))); do
    s=$(job_state "$1")
    case $s in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE) echo "$s"; return 0 ;; esac
    sleep 0.2
  done
  echo "${s:-UNKNOWN}"
  return 1
}
