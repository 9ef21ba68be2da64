#!/bin/bash
# How long a reader of a live view waits while `isa-ledger rebuild` runs on PostgreSQL.
#
#   bench/rebuild-reader-wait.sh BIN DATA_DIR DATABASE_URL
#
# DATA_DIR holds a log in the PostgreSQL database at DATABASE_URL (for example 100,000
# events from `BIN --data-dir DATA_DIR --database-url URL bench --events 100000`) whose
# views have been built once (`BIN … rebuild`). A psql session counts the rows of
# views.view_disclosures every 5 ms while the rebuild runs; the script prints the
# longest and the median wait. Needs python3 and psql.
set -euo pipefail
BIN=$1 DIR=$2 URL=$3
python3 - "$BIN" "$DIR" "$URL" <<'PY'
import subprocess, sys, threading, time
binary, data_dir, url = sys.argv[1:4]
reader = subprocess.Popen(["psql", url, "-qAt", "-v", "ON_ERROR_STOP=1"], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True, bufsize=1)
waits, stop = [], False
def poll():
    while not stop:
        began = time.perf_counter()
        reader.stdin.write("SELECT count(*) FROM views.view_disclosures;\n")
        reader.stdin.flush()
        if not reader.stdout.readline():
            sys.exit("the reader's query failed (are the views built?)")
        waits.append(time.perf_counter() - began)
        time.sleep(0.005)
thread = threading.Thread(target=poll)
thread.start()
began = time.perf_counter()
rebuild = subprocess.run([binary, "--data-dir", data_dir, "--database-url", url, "rebuild"],
                         capture_output=True, text=True)
took = time.perf_counter() - began
stop = True
thread.join()
reader.stdin.close()
waits.sort()
print(f"rebuild {took:.2f} s (exit {rebuild.returncode}); {len(waits)} reads, "
      f"median {waits[len(waits) // 2] * 1e3:.1f} ms, longest {waits[-1] * 1e3:.0f} ms")
PY
