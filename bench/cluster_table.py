#!/usr/bin/env python3
"""The table of bench/cluster.sh: medians of its runs, and the ratios."""
import json
import re
import statistics
import sys

runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
bench = open(sys.argv[2]).read() if len(sys.argv) > 2 else ''


def med(label, key, rate=None):
    xs = [r[key] for r in runs if r['label'] == label and
          (rate is None or r['rate'] == rate)]
    return statistics.median(xs) if xs else float('nan')


def per(label, cpu, count):
    xs = [r[cpu] / r[count] for r in runs if r['label'] == label and r[count]]
    return statistics.median(xs) if xs else float('nan')


for r in runs:
    r['broadcasts'] = r['broadcasts_per_s'] * r.get('window_s', 0)

print('| figure | single node | cluster (2 nodes + producer) | ratio |')
print('|---|---|---|---|')
s_cpu = per('single', 'node_cpu_s', 'msgs') * 1e6
c_cpu = per('cluster', 'node_cpu_s', 'msgs') * 1e6
print(f'| CPU per delivered message, nodes serving clients (µs) | {s_cpu:.2f} '
      f'| {c_cpu:.2f} | {c_cpu / s_cpu:.2f} |')
print(f'| producer CPU per broadcast (µs) | (in the node) '
      f'| {per("cluster", "producer_cpu_s", "broadcasts") * 1e6:.2f} | |')
print(f'| Redis CPU per broadcast (µs) | - '
      f'| {per("cluster", "redis_cpu_s", "broadcasts") * 1e6:.2f} | |')
for k in ('p50_us', 'p99_us', 'max_us'):
    a, b = med('single', k), med('cluster', k)
    print(f'| latency {k[:-3]} (µs) | {a:.0f} | {b:.0f} | added {b - a:+.0f} |')
print(f'| delivered | {med("single", "delivered"):.4f} '
      f'| {med("cluster", "delivered"):.4f} | |')
print()
print('| broadcasts/s offered (maxrate) | delivered | seq gaps | p99 µs | Redis CPU % |')
print('|---|---|---|---|---|')
best = 0
for r in sorted((r for r in runs if r['label'] == 'maxrate'),
                key=lambda r: r['rate']):
    print(f"| {r['broadcasts_per_s']:.0f} | {r['delivered']:.4f} "
          f"| {r['seq_gaps']} "
          f"| {r['p99_us']} | {100 * r['redis_cpu_s'] / r['wall_s']:.0f} |")
    # Every message: no seq gap (no progress replaced before it went out).
    if r['seq_gaps'] == 0 and r['delivered'] >= 0.99:
        best = max(best, r['broadcasts_per_s'])
print()
print('| broadcasts/s offered, producer alone | producer calls/s '
      '| confirmed by Redis/s | publish RTT µs | Redis CPU µs per broadcast '
      '| Redis CPU % |')
print('|---|---|---|---|---|---|')
best_pub = 0
for r in sorted((r for r in runs if r['label'] == 'publish'),
                key=lambda r: r['rate']):
    n = max(r['confirmed_per_s'] * r['wall_s'], 1)
    print(f"| {r['broadcasts_per_s']:.0f} | {r['calls_per_s']:.0f} "
          f"| {r['confirmed_per_s']:.0f} | {r['rtt_us']:.0f} "
          f"| {1e6 * r['redis_cpu_s'] / n:.1f} "
          f"| {100 * r['redis_cpu_s'] / r['wall_s']:.0f} |")
    if r['confirmed_per_s'] >= 0.99 * r['broadcasts_per_s']:
        best_pub = max(best_pub, r['broadcasts_per_s'])
m = re.search(r'([0-9.]+)\s*requests per second', bench)
ref = float(m.group(1)) if m else float('nan')
print()
print(f'highest rate with every message delivered to 2 clients per session: '
      f'{best:.0f} broadcasts/s; highest rate Redis confirmed, producer alone: '
      f'{best_pub:.0f} broadcasts/s; redis-benchmark PUBLISH (pipelined 32): '
      f'{ref:.0f}/s; ratio {best_pub / ref:.3f}')
