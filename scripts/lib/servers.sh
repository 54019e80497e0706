# Helpers for the throwaway servers of the tests (scripts/registry,
# scripts/prometheus): free ports, and stopping a server by the PID it wrote.

# A port nobody listens on right now. Another process may still take it before
# the server binds it, which is why the scripts retry with a new port.
pick_port() {
    local port
    while true; do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
}

# Stops the process whose PID is in <pidfile>: TERM, then KILL after <timeout> s.
stop_pid() {
    local pidfile=$1 timeout=$2 pid deadline
    [[ -f $pidfile ]] || return 0
    pid=$(cat "$pidfile")
    deadline=$((SECONDS + timeout))
    kill "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    rm -f "$pidfile"
}

# Waits until GET <url> answers <status>, while process <pid> lives.
wait_http() {
    local pid=$1 url=$2 expected=$3 timeout=$4 deadline status
    deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)); do
        kill -0 "$pid" 2>/dev/null || return 1
        status=$(curl -s -o /dev/null -w '%{http_code}' "$url" || true)
        [[ $status == "$expected" ]] && return 0
        sleep 0.2
    done
    return 1
}
