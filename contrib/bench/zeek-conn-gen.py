#!/usr/bin/env python3
"""Writes a synthetic Zeek conn.log (Zeek's default fields) for the replay benchmark:
N lines in connection-end order (start times jittered by up to 5 min) from 5,000 clients
to 1,000 servers: 80 % Established TCP, 15 % failed SYNs, 5 % UDP; IPv4 with some IPv6.

    zeek-conn-gen.py N OUT.log [--json]
"""
import json
import random
import sys

FIELDS = ("ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto service duration orig_bytes "
          "resp_bytes conn_state local_orig local_resp missed_bytes history orig_pkts "
          "orig_ip_bytes resp_pkts resp_ip_bytes tunnel_parents").split()


def main():
    n, out = int(sys.argv[1]), sys.argv[2]
    as_json = "--json" in sys.argv
    rnd = random.Random(2014)
    t0 = 1_401_667_200.0
    with open(out, "w") as f:
        if not as_json:
            f.write("#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n"
                    "#unset_field\t-\n#path\tconn\n#open\t2014-06-02-00-00-00\n")
            f.write("#fields\t" + "\t".join(FIELDS) + "\n")
            f.write("#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount"
                    "\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount"
                    "\tset[string]\n")
        for i in range(n):
            end = t0 + i * 0.001
            ts = end - rnd.random() * 300
            v6 = rnd.random() < 0.1
            h = rnd.randrange(5000)  # 5,000 clients
            src = (f"2001:db8:0:2::{h:x}" if v6 else f"10.{1 + h // 250}.0.{1 + h % 250}")
            dst = (f"2001:db8:0:1::{rnd.randrange(1, 200):x}" if v6
                   else f"10.200.{rnd.randrange(4)}.{rnd.randrange(1, 255)}")
            r = rnd.random()
            if r < 0.80:
                proto, hist, state, svc = "tcp", "ShADadFf", "SF", "http"
            elif r < 0.95:
                proto, hist, state, svc = "tcp", "S", "S0", "-"
            else:
                proto, hist, state, svc = "udp", "Dd", "SF", "dns"
            dport = rnd.choice((80, 443, 22, 445, 53, 3389, 8080))
            row = [f"{ts:.6f}", f"C{i:x}Qz", src, str(rnd.randrange(1024, 65535)), dst, str(dport),
                   proto, svc, f"{rnd.random() * 30:.6f}", str(rnd.randrange(9999)),
                   str(rnd.randrange(99999)), state, "T", "F", "0", hist,
                   str(rnd.randrange(1, 40)), str(rnd.randrange(40, 9000)),
                   str(rnd.randrange(0, 40)), str(rnd.randrange(0, 90000)), "-"]
            if as_json:
                rec = dict(zip(FIELDS, row))
                rec["ts"] = float(row[0])
                for k in ("id.orig_p", "id.resp_p", "orig_bytes", "resp_bytes", "missed_bytes",
                          "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes"):
                    rec[k] = int(rec[k])
                rec["duration"] = float(rec["duration"])
                rec["local_orig"], rec["local_resp"] = True, False
                del rec["tunnel_parents"]
                if svc == "-":
                    del rec["service"]
                f.write(json.dumps(rec, separators=(",", ":")) + "\n")
            else:
                f.write("\t".join(row) + "\n")
        if not as_json:
            f.write("#close\t2014-06-02-01-00-00\n")


main()
