#!/usr/bin/env python3
"""Helpers of the SIP load bench (benches/sip_load.sh). Standard library only.

  sip_load.py pcap OUT.pcap SECONDS
      A PCMU RTP stream for sipp's play_pcap_audio: 20 ms packets, one SSRC,
      a voiced, syllable-like signal (so VAD and the DTMF detector do real
      work) with pauses.
  sip_load.py rtt RTT.csv [RTT.csv...]
      Percentiles of INVITE->200 times from sipp's -trace_rtt files.
  sip_load.py log HOTLINE.log SINCE_LINE
      Sums the rtp_sent/rtp_received of the "call ended" lines (JSON log)
      after line SINCE_LINE, and counts errors, warnings and 503s.
  sip_load.py sipsetup CAP.pcap SIP_PORT
      INVITE -> 200 OK times on the wire (microsecond timestamps), paired
      by Call-ID, from a capture of Hotline's SIP port: sipp's rtt file has
      1 ms resolution, too coarse for a setup time of a millisecond or less.
  sip_load.py capture CAP.pcap PORT_MIN PORT_MAX T0 T1
      From a capture on lo: RTP packets to and from Hotline's RTP ports (the
      range), and the spacing of Hotline's outgoing packets per stream (its
      source port) between Unix times T0 and T1.

Every output line is `key value...`, for the shell script to pick up.
"""
import json
import math
import struct
import sys
from collections import defaultdict


def ulaw(sample):
    """G.711 mu-law encoding of one 16-bit sample (the reference algorithm)."""
    bias, clip = 0x84, 32635
    sign = 0x80 if sample < 0 else 0
    s = min(abs(sample), clip) + bias
    exp = 7
    mask = 0x4000
    while exp > 0 and not s & mask:
        exp -= 1
        mask >>= 1
    mant = (s >> (exp + 3)) & 0x0F
    return ~(sign | (exp << 4) | mant) & 0xFF


def make_pcap(out, seconds):
    rate, ptime = 8000, 20
    spp = rate * ptime // 1000
    n = int(seconds * 1000 // ptime)
    # 120 Hz pitch with harmonics, shaped into 250 ms "syllables" separated
    # by 150 ms gaps, and a 1.5 s pause every 4 s: the VAD sees speech
    # start and stop, the jitter buffer and echo see non-constant audio.
    samples = []
    for i in range(n * spp):
        t = i / rate
        cycle = t % 4.0
        syl = t % 0.4
        env = 0.0 if cycle > 2.5 or syl > 0.25 else math.sin(math.pi * syl / 0.25)
        v = sum(math.sin(2 * math.pi * 120 * k * t) / k for k in (1, 2, 3, 5, 7))
        samples.append(int(6000 * env * v))
    payload = bytes(ulaw(s) for s in samples)
    eth = b"\x00" * 12 + b"\x08\x00"
    ssrc, seq0, ts0 = 0x51D10AD, 1000, 160000
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for k in range(n):
            rtp = struct.pack("!BBHII", 0x80, 0x80 if k == 0 else 0, (seq0 + k) & 0xFFFF,
                              ts0 + k * spp, ssrc) + payload[k * spp:(k + 1) * spp]
            udp = struct.pack("!HHHH", 40000, 40002, 8 + len(rtp), 0) + rtp
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0xB8, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                             bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
            c = sum(struct.unpack("!10H", ip))
            c = (c & 0xFFFF) + (c >> 16)
            c = (c & 0xFFFF) + (c >> 16)
            ip = ip[:10] + struct.pack("!H", ~c & 0xFFFF) + ip[12:]
            frame = eth + ip + udp
            # The pcap timestamps are what sipp paces the stream by.
            t_us = k * ptime * 1000
            f.write(struct.pack("<IIII", 1_700_000_000 + t_us // 1_000_000, t_us % 1_000_000,
                                len(frame), len(frame)))
            f.write(frame)
    print(f"packets {n}")


def pct(sorted_values, p):
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, math.ceil(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def rtt(paths):
    values = []
    dates = []
    for path in paths:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(";")
                # Date_ms;response_time_ms;rtd_no: the header line is skipped.
                try:
                    values.append(float(parts[1]))
                    dates.append(float(parts[0]))
                except (IndexError, ValueError):
                    continue
    values.sort()
    print(f"setup_count {len(values)}")
    # Answered calls per second between the first and the last 200 OK: the
    # rate the server actually sustained.
    span = (max(dates) - min(dates)) / 1000 if len(dates) > 1 else 0
    print(f"setup_rate {(len(dates) - 1) / span if span > 0 else float('nan'):.1f}")
    for p in (50, 95, 99, 99.9):
        print(f"setup_p{p:g} {pct(values, p):.3f}")
    print(f"setup_max {values[-1] if values else float('nan'):.3f}")


def log(path, since):
    sent = received = ended = errors = warnings = rejected = 0
    without_stats = 0
    reasons = defaultdict(int)
    with open(path, errors="replace") as f:
        for i, line in enumerate(f):
            if i < since:
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            level = rec.get("level", "")
            # Hotline's JSON log flattens the event's fields into the line.
            fields = rec
            if level == "ERROR":
                errors += 1
            elif level == "WARN":
                warnings += 1
                reasons[fields.get("message", "?")[:80]] += 1
            if fields.get("message") == "call ended":
                ended += 1
                if fields.get("sip_code") == 503:
                    rejected += 1
                if fields.get("rtp_sent") is None:
                    without_stats += 1
                sent += fields.get("rtp_sent") or 0
                received += fields.get("rtp_received") or 0
    print(f"calls_ended {ended}")
    print(f"calls_without_media_stats {without_stats}")
    print(f"hotline_rtp_sent {sent}")
    print(f"hotline_rtp_received {received}")
    print(f"log_errors {errors}")
    print(f"log_warnings {warnings}")
    print(f"calls_503 {rejected}")
    for msg, count in sorted(reasons.items(), key=lambda kv: -kv[1])[:5]:
        print(f"warning {count} {msg}")


def capture(path, lo, hi, t0, t1):
    to_hotline = from_hotline = 0
    last = {}
    deltas = []
    for t, sport, dport, rtp in pcap_udp(path):
        # RTCP (second byte 192-223, RFC 5761 section 4) is not RTP: it
        # neither counts nor has a 20 ms cadence.
        if len(rtp) < 2 or 192 <= rtp[1] <= 223:
            continue
        if lo <= dport <= hi:
            to_hotline += 1
        if lo <= sport <= hi:
            from_hotline += 1
            # Spacing is per stream: consecutive packets of one port.
            prev = last.get(sport)
            last[sport] = t
            if prev is not None and t0 <= prev and t <= t1:
                deltas.append((t - prev) * 1000)
    deltas.sort()
    print(f"capture_to_hotline {to_hotline}")
    print(f"capture_from_hotline {from_hotline}")
    print(f"capture_streams {len(last)}")
    print(f"spacing_count {len(deltas)}")
    for p in (50, 99, 99.9):
        print(f"spacing_p{p:g} {pct(deltas, p):.2f}")
    print(f"spacing_min {deltas[0] if deltas else float('nan'):.2f}")
    print(f"spacing_max {deltas[-1] if deltas else float('nan'):.2f}")
    within = sum(1 for d in deltas if 18.0 <= d <= 22.0)
    print(f"spacing_within_2ms_pct {100 * within / len(deltas) if deltas else float('nan'):.2f}")


def pcap_udp(path):
    """Yields (time, source port, destination port, payload) of the IPv4 UDP
    packets of a pcap (Ethernet or Linux cooked link layer)."""
    with open(path, "rb") as f:
        head = f.read(24)
        magic = struct.unpack("<I", head[:4])[0]
        # tcpdump writes microsecond pcaps; nanosecond ones (0xA1B23C4D) too.
        scale = 1e-9 if magic == 0xA1B23C4D else 1e-6
        linktype = struct.unpack("<I", head[20:24])[0]
        # lo is Ethernet (1) under tcpdump; "any" would be Linux cooked (113).
        l2 = {1: 14, 113: 16}[linktype]
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            sec, frac, incl, _ = struct.unpack("<IIII", rec)
            pkt = f.read(incl)
            if len(pkt) < l2 + 28 or pkt[l2] >> 4 != 4 or pkt[l2 + 9] != 17:
                continue
            udp = l2 + (pkt[l2] & 0x0F) * 4
            sport, dport = struct.unpack("!HH", pkt[udp:udp + 4])
            yield sec + frac * scale, sport, dport, pkt[udp + 8:]


def header(msg, long_name, short_name):
    for line in msg.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() in (long_name, short_name):
            return value.strip()
    return None


def sipsetup(path, port):
    invites, answers = {}, {}
    for t, sport, dport, data in pcap_udp(path):
        if dport == port and data.startswith(b"INVITE "):
            # The first INVITE, not a retransmission, starts the clock.
            invites.setdefault(header(data, b"call-id", b"i"), t)
        elif sport == port and data.startswith(b"SIP/2.0 200"):
            cseq = header(data, b"cseq", b"cseq") or b""
            if cseq.endswith(b"INVITE"):
                answers.setdefault(header(data, b"call-id", b"i"), t)
    ms = sorted((answers[c] - t) * 1000 for c, t in invites.items() if c in answers)
    print(f"wire_invites {len(invites)}")
    print(f"wire_answered {len(ms)}")
    for p in (50, 95, 99, 99.9):
        print(f"wire_setup_p{p:g} {pct(ms, p):.3f}")
    print(f"wire_setup_max {ms[-1] if ms else float('nan'):.3f}")


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "pcap" and len(argv) == 4:
        make_pcap(argv[2], float(argv[3]))
    elif cmd == "rtt" and len(argv) >= 3:
        rtt(argv[2:])
    elif cmd == "log" and len(argv) == 4:
        log(argv[2], int(argv[3]))
    elif cmd == "sipsetup" and len(argv) == 4:
        sipsetup(argv[2], int(argv[3]))
    elif cmd == "capture" and len(argv) == 7:
        capture(argv[2], int(argv[3]), int(argv[4]), float(argv[5]), float(argv[6]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
