#!/usr/bin/env python3
"""One publish-only run of bench/cluster.sh, from the producer's reports."""
import json
import sys

rate, r0, r1, hz, sessions, host = sys.argv[1:7]
reps = [json.loads(l[7:]) for l in open(host) if l.startswith('REPORT ')]
a, b = reps[-2], reps[-1]
wall = b['t_s'] - a['t_s']
confirmed = b['cluster_publishes'] - a['cluster_publishes']
calls = b['producer_calls'] - a['producer_calls']
print(json.dumps({
    'label': 'publish', 'rate': float(rate),
    'broadcasts_per_s': int(sessions) * float(rate), 'wall_s': wall,
    'confirmed_per_s': confirmed / wall, 'calls_per_s': calls / wall,
    'producer_cpu_s': b['cpu_s'] - a['cpu_s'],
    'redis_cpu_s': (float(r1) - float(r0)) / float(hz),
    'outbox_end': b['cluster_outbox'],
    'rtt_us': (b['cluster_rtt_sum_us'] - a['cluster_rtt_sum_us']) /
              max(confirmed, 1)}))
