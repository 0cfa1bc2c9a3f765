"""The fewest rules: a minimum set of (prefix, port range) rules whose union is exactly an allowed set of (address,
port) pairs, proven, or the best cover found and a lower bound when the proof would cost too much.

Rules may overlap. The set is given as entries (first address, last address, first port, last port, tag); a rule's
tags are those of the entries that allow some of its pairs. Why the answer is the minimum:

1. Ranges. The fast path (addresses.port_range_covers) merges each address's ports into *ranges* (maximal
   intervals). A valid rule (v, C) allows C at every address of v, so C lies inside one range of each of them.
2. Bands and runs. Call two ranges linked when they overlap, a *band* a class of linked ranges (their union is an
   interval) and a band's *runs* the maximal address intervals whose every address holds a range of the band. A
   valid rule lies in one band (its ports in one range of each of its addresses, step 1) and in one run (its
   addresses each hold that band's ranges, and a prefix is an interval). Every allowed pair lies in exactly one
   (band, run), so the minimum is the sum of the minima of the (band, run) subproblems, solved independently.
3. One range. A subproblem whose run holds a single range R allows exactly run x R. Covering one port of R
   already takes as many rules as the fewest prefixes whose union is the run (range_cidrs, which is optimal for
   an interval), and the fast path's rules for R over the run are those prefixes with all of R: optimal. This is
   every subproblem of nearly every rule set (no two ranges overlap).
4. Overlapping ranges (a /28 allowed 9 and one of its hosts 8-10) go to the exact search, over the prefix trie of
   the run. Cut the band's ports where a range starts or ends into *pieces*; a rule allows whole pieces. Let
   P(v) be the pieces every address of prefix v allows. Without loss, a rule at v allows a maximal interval
   (*component*) of P(v): widening it keeps it valid and covers more. A component of P(v) inside P(parent(v)) is
   dominated by the parent's component around it, so only the others (*options*) are needed, and none below a
   prefix whose addresses all allow the same ports (a *uniform* prefix: P is the same below it).
   At a uniform prefix w, an option is needed whatever is chosen above (it holds a piece no larger prefix allows):
   it is *forced*; a component that is not an option is needed exactly when the components chosen at larger
   prefixes (X) leave some of it uncovered. An option of a non-uniform prefix that is a component of every address
   below it is forced too: below, its pieces can only be allowed again at two uniform prefixes or more.
   The search computes g(v, X), the fewest rules at v and below given X: the least, over the subsets S of v's
   options not inside X (forced ones always in S), of |S| plus g of both halves given X with S. A rule at or below
   v lies in one *class* of v: a component of the union of the options and needed components at or below v,
   components that merely touch kept apart (no rule can hold pieces of both). So g(v, X) is the sum over v's
   classes of g restricted to the class, and the search runs per (prefix, class, X within the class), memoised.
   Within a class, g only falls as X grows (more covered never needs more rules), so a half's class worth as
   much with every option taken as with none is worth that whatever is taken; the options then split into groups
   linked by the halves' other classes they meet, and each group's best subset is found on its own. Each step is
   a minimum over every choice the lemmas leave: the result is the minimum.

Each class of a run's largest prefixes is searched within a share of the rule set's budget (work units: states and
subsets tried, and the sizes of what is built: deterministic, so the output never depends on the machine). A class
past its share gets a heuristic cover instead (an option is taken when both halves need some of it) and counts 1
in the lower bound (it holds an option or a needed component, and only a rule of the class can cover that);
forced options of uniform prefixes count 1 each, and a proven class its minimum. The subproblem keeps the fast
path's rules unless the cover found is smaller, and reports its lower bound, equal to its rules when proven.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass
from heapq import merge

from netgen.addresses import (
    Covers,
    Entry,
    Segment,
    interval,
    interval_segments,
    network,
    port_range_covers,
    range_cidrs,
)

# Work units per rule set (search states, subsets tried, sizes of the tries built): half a second or so at this
# machine's pace, far more than the overlaps of the example estate take (microseconds); what follows a spent budget
# is a single pass (the heuristic cover), linear in the trie. It bounds the search's exponential part, not the rule
# set's size: a /24 on 10,000 separate ports beside one host on their range takes 3.5 s (10,001 rules, proven).
EXACT_BUDGET = 300_000

Span = tuple[int, int]  # an inclusive interval of pieces
Found = list[tuple[tuple[int, int], int, int, set[Hashable]]]  # [(port range, start, prefixlen, tags)]


@dataclass
class RuleCover:
    """covers: {port range: [(prefix, tags)]}, in port-range and address order; rules: how many; bound: a lower
    bound on the fewest rules, equal to rules when they are proven the fewest; exact: subproblems of overlapping
    ranges proven; unproven: those that were not (a class past its budget); work: units spent."""

    covers: Covers
    rules: int
    bound: int
    exact: int = 0
    unproven: int = 0
    work: int = 0

    @property
    def proven(self) -> bool:
        return self.rules == self.bound


def fewest_rules(entries: list[Entry], budget: int | None = None) -> RuleCover:
    """The fewest rules allowing exactly the (address, port) pairs of entries, each tagged with the tags of the
    entries that allow some of its pairs (see the module's docstring for the proof); budget: EXACT_BUDGET."""
    budget = EXACT_BUDGET if budget is None else budget
    segments = interval_segments(entries)
    covers = port_range_covers(segments)
    rules = sum(map(len, covers.values()))
    result = RuleCover(covers, rules, rules)
    problems = _overlapping(segments, list(covers))
    if not problems:  # nearly every rule set: no two ranges overlap, the fast path is the minimum (step 3)
        return result
    solved: list[tuple[_Problem, Found]] = []
    for problem, fast in zip(problems, _fast_counts(covers, problems), strict=True):
        search = _Search(problem, budget - result.work)
        found, bound = search.run()
        result.work += search.work
        if found is not None and len(found) < fast:
            solved.append((problem, found))
            result.rules -= fast - len(found)
        result.bound -= fast - bound
        if bound == min(fast, len(found) if found is not None else fast):
            result.exact += 1
        else:
            result.unproven += 1
    if solved:
        result.covers = _replace(covers, solved)
    return result


@dataclass
class _Problem:
    """A (band, run): addresses lo..hi, its segments with their ranges in the band, and those ranges."""

    lo: int
    hi: int
    segments: list[tuple[Segment, tuple[tuple[int, int], ...]]]
    ranges: set[tuple[int, int]]


def _overlapping(segments: list[Segment], ranges: list[tuple[int, int]]) -> list[_Problem]:
    """The (band, run) subproblems that hold two ranges or more (step 2), in port and address order; [] when no
    two ranges overlap (checked first, on the sorted ranges alone)."""
    bands: list[list] = []  # [first, last, ranges]
    for first, last in ranges:  # sorted
        if bands and first <= bands[-1][1]:
            bands[-1][1] = max(bands[-1][1], last)
            bands[-1][2].append((first, last))
        else:
            bands.append([first, last, [(first, last)]])
    band_of = {r: b for b, (_, _, held) in enumerate(bands) if len(held) > 1 for r in held}
    if not band_of:
        return []
    current: dict[int, _Problem] = {}
    problems: list[tuple[int, _Problem]] = []
    for segment in segments:
        here: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for r in segment.ports:
            b = band_of.get(r)
            if b is not None:
                here[b].append(r)
        for b, held in here.items():
            run = current.get(b)
            if run is not None and run.hi + 1 == segment.first:
                run.hi = segment.last
                run.segments.append((segment, tuple(held)))
                run.ranges.update(held)
            else:
                run = current[b] = _Problem(segment.first, segment.last, [(segment, tuple(held))], set(held))
                problems.append((b, run))
    return [run for _, run in sorted(problems, key=lambda item: (item[0], item[1].lo)) if len(run.ranges) > 1]


def _spans(problems: list[_Problem]) -> dict[tuple[int, int], tuple[list[int], list[tuple[int, int, int]]]]:
    """{range: (starts, [(lo, hi, problem index)])} of the subproblems holding each range, in address order."""
    spans: dict[tuple[int, int], list[tuple[int, int, int]]] = defaultdict(list)
    for k, problem in enumerate(problems):
        for r in problem.ranges:
            spans[r].append((problem.lo, problem.hi, k))
    return {r: ([lo for lo, _, _ in sorted(held)], sorted(held)) for r, held in spans.items()}


def _problem_of(spans, r: tuple[int, int], first: int) -> int | None:
    """The index of the subproblem holding range r at address first, if any."""
    starts, held = spans[r]
    i = bisect_right(starts, first) - 1
    return held[i][2] if i >= 0 and first <= held[i][1] else None


def _fast_counts(covers: Covers, problems: list[_Problem]) -> list[int]:
    """How many of the fast path's rules lie in each subproblem."""
    counts = [0] * len(problems)
    spans = _spans(problems)
    for r in spans:
        for net, _ in covers[r]:
            k = _problem_of(spans, r, interval(net)[0])
            if k is not None:
                counts[k] += 1
    return counts


def _replace(covers: Covers, solved: list[tuple[_Problem, Found]]) -> Covers:
    """covers with the fast path's rules of each solved subproblem replaced by the search's."""
    spans = _spans([problem for problem, _ in solved])
    result = {ports: list(cover) for ports, cover in covers.items()}
    for r in spans:
        result[r] = [(net, tags) for net, tags in result[r] if _problem_of(spans, r, interval(net)[0]) is None]
    for _, found in solved:
        for ports, start, prefixlen, tags in found:
            result.setdefault(ports, []).append((network(start, prefixlen), tags))
    return {ports: sorted(cover, key=lambda item: item[0]) for ports, cover in sorted(result.items()) if cover}


# Piece sets are sorted lists of disjoint spans. A set of pieces (P, X) keeps touching spans joined; a coupling
# (a segment's ranges, the union of classes) keeps them apart, as no rule holds pieces of both.

def _intersect(a: list[Span], b: list[Span]) -> list[Span]:
    result, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            result.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return result


def _join(spans, touching: bool) -> list[Span]:
    """Sorted spans merged where they overlap (and, with touching, where they touch)."""
    result: list[list[int]] = []
    reach = 1 if touching else 0
    for lo, hi in spans:
        if result and lo <= result[-1][1] + reach:
            result[-1][1] = max(result[-1][1], hi)
        else:
            result.append([lo, hi])
    return [(lo, hi) for lo, hi in result]


def _inside(spans: list[Span], span: Span) -> bool:
    """Whether span lies inside one of spans (a set of pieces, touching spans joined)."""
    i = bisect_right(spans, (span[0], 1 << 62)) - 1
    return i >= 0 and spans[i][1] >= span[1]


def _clip(spans: tuple[Span, ...], span: Span) -> tuple[Span, ...]:
    return tuple((max(lo, span[0]), min(hi, span[1])) for lo, hi in spans if lo <= span[1] and hi >= span[0])


def _meets(spans: list[Span], span: Span) -> bool:
    i = bisect_right(spans, (span[1], 1 << 62)) - 1
    return i >= 0 and spans[i][1] >= span[0]


class _OutOfBudget(Exception):
    pass


def _root(group: list[int], i: int) -> int:
    while group[i] != i:
        group[i] = group[group[i]]
        i = group[i]
    return i


def _groups(group: list[int], live: list) -> list[list[int]]:
    """The options that meet some class of live, grouped by their root in group, in option order."""
    met = sorted({i for _, _, meeting in live for i in meeting})
    by_root: dict[int, list[int]] = {}
    for i in met:
        by_root.setdefault(_root(group, i), []).append(i)
    return list(by_root.values())


@dataclass
class _Class:
    forced: tuple[Span, ...]  # options of every address below: always taken
    free: tuple[Span, ...]  # the other options
    inside: list[tuple[_Node, Span]]  # the halves' classes inside this one


class _Node:
    """A prefix of the run's trie; p: the pieces all its addresses allow; q: their ranges, coupled; segment: the
    segment holding it when it is uniform; classes: {class: _Class}; needed: the classes' spans, coupled."""

    __slots__ = ("start", "prefixlen", "segment", "p", "q", "halves", "classes", "needed")

    def __init__(self, start: int, prefixlen: int):
        self.start, self.prefixlen = start, prefixlen
        self.segment: int | None = None
        self.p: list[Span] = []
        self.q: list[Span] = []
        self.halves: tuple[_Node, ...] = ()
        self.classes: dict[Span, _Class] = {}
        self.needed: list[Span] = []


class _Search:
    """The search of one subproblem (step 4)."""

    def __init__(self, problem: _Problem, budget: int):
        self.problem, self.budget, self.limit, self.work = problem, budget, budget, 0
        cuts = sorted({first for first, _ in problem.ranges} | {last + 1 for _, last in problem.ranges})
        index = {cut: i for i, cut in enumerate(cuts)}
        self.cuts = cuts
        self.firsts = [segment.first for segment, _ in problem.segments]
        self.spans = [sorted((index[first], index[last + 1] - 1) for first, last in held)
                      for _, held in problem.segments]
        self.memo: dict[tuple[int, Span, tuple[Span, ...]], tuple[int, tuple[Span, ...]]] = {}
        self.forced = 0  # forced options of uniform prefixes: each takes a rule of its own

    def spend(self, units: int) -> None:
        if self.work + units > self.limit:
            raise _OutOfBudget
        self.work += units

    def run(self) -> tuple[Found | None, int]:
        """(the rules found, or None when the trie is too large to build within the budget; a lower bound)."""
        roots = range_cidrs(self.problem.lo, self.problem.hi)
        chosen: list[tuple[_Node, Span]] = []
        try:
            nodes = [self._build(interval(net)[0], net.prefixlen) for net in roots]
            for node in nodes:
                self._annotate(node, [], chosen)
        except _OutOfBudget:
            return None, max(len(roots), self.forced)
        bound = self.forced
        left = sum(len(node.classes) for node in nodes)
        for node in nodes:
            for cls in node.classes:
                self.limit = self.work + (self.budget - self.work) // min(4, left)  # a share of what is left
                left -= 1
                try:
                    best = self._best(node, cls, ())
                except _OutOfBudget:
                    bound += 1  # it holds an option or a needed component: some rule of the class covers it
                    self._guess(node, cls, (), chosen)
                    continue
                bound += best
                self._emit(node, cls, (), chosen)
        return self._tagged(chosen), bound

    def _build(self, start: int, prefixlen: int) -> _Node:
        node = _Node(start, prefixlen)
        end = start + (1 << (32 - prefixlen)) - 1
        i = bisect_right(self.firsts, start) - 1
        if end <= self.problem.segments[i][0].last:
            node.segment = i
            node.p = node.q = self.spans[i]
            self.spend(1)
            return node
        half = 1 << (31 - prefixlen)
        node.halves = (self._build(start, prefixlen + 1), self._build(start + half, prefixlen + 1))
        left, right = node.halves
        node.p = _intersect(left.p, right.p)
        node.q = _join(merge(left.q, right.q), touching=False)
        self.spend(1 + len(node.q))
        return node

    def _annotate(self, node: _Node, parent_p: list[Span], chosen: list[tuple[_Node, Span]]) -> None:
        """Options, forced options and classes, bottom-up; a uniform prefix's forced options go to chosen."""
        options = [c for c in node.p if not _inside(parent_p, c)]
        self.spend(1 + len(node.p))
        if node.segment is not None:
            self.forced += len(options)
            chosen.extend((node, c) for c in options)
            node.needed = [c for c in node.p if _inside(parent_p, c)]
            node.classes = {c: _Class((), (), []) for c in node.needed}
            return
        for half in node.halves:
            self._annotate(half, node.p, chosen)
        left, right = node.halves
        node.needed = classes = _join(merge(options, left.needed, right.needed), touching=False)
        lows = [lo for lo, _ in classes]
        forced: dict[Span, list[Span]] = defaultdict(list)
        free: dict[Span, list[Span]] = defaultdict(list)
        q_lows = [lo for lo, _ in node.q]
        for c in options:
            cls = classes[bisect_right(lows, c[0]) - 1]
            (forced if node.q[bisect_right(q_lows, c[0]) - 1] == c else free)[cls].append(c)
        inside: dict[Span, list[tuple[_Node, Span]]] = defaultdict(list)
        for half in node.halves:
            for c in half.classes:
                inside[classes[bisect_right(lows, c[0]) - 1]].append((half, c))
        node.classes = {cls: _Class(tuple(forced[cls]), tuple(free[cls]), inside[cls]) for cls in classes}
        self.spend(len(classes) + len(options))

    def _best(self, node: _Node, cls: Span, covered: tuple[Span, ...]) -> int:
        """g(node, covered) in class cls: the fewest rules at node and below, given the pieces covered above.

        g only falls as more is covered. So a half's class worth as much with every option taken as with none is
        worth that whatever is taken, and the options split into groups linked by the halves' other classes they
        meet: each group's best subset is found on its own (an option that meets none of them is never worth a
        rule here)."""
        if node.segment is not None:
            return 0 if _inside(covered, cls) else 1
        key = (id(node), cls, covered)
        known = self.memo.get(key)
        if known is not None:
            return known[0]
        held = node.classes[cls]
        free = [c for c in held.free if not _inside(covered, c)]
        base = tuple(_join(merge(covered, held.forced), touching=True))
        everything = tuple(_join(merge(base, free), touching=True))
        self.spend(1 + len(held.inside) + len(free) + len(covered))
        cost = len(held.forced)
        group = list(range(len(free)))  # union-find over the options
        live: list[tuple[_Node, Span, list[int]]] = []  # (half, class, the options meeting it)
        for half, inner in held.inside:
            meeting = [i for i, c in enumerate(free) if c[0] <= inner[1] and inner[0] <= c[1]]
            low = self._best(half, inner, _clip(base, inner))
            if not meeting or self._best(half, inner, _clip(everything, inner)) == low:
                cost += low
                continue
            live.append((half, inner, meeting))
            for i in meeting[1:]:
                group[_root(group, i)] = _root(group, meeting[0])
        taken: list[Span] = []
        for members in _groups(group, live):
            options = [free[i] for i in members]
            root = _root(group, members[0])
            inner_classes = [(half, inner) for half, inner, meeting in live if _root(group, meeting[0]) == root]
            if len(options) > 20:
                raise _OutOfBudget
            self.spend((1 << len(options)) * (1 + len(inner_classes)))
            best, best_taken = -1, []
            for choice in range((1 << len(options)) - 1, -1, -1):  # all first: on a tie, the larger prefixes
                these = [c for i, c in enumerate(options) if choice >> i & 1]
                allowed = tuple(_join(merge(base, these), touching=True))
                part = len(these)
                for half, inner in inner_classes:
                    if best >= 0 and part >= best:
                        break
                    part += self._best(half, inner, _clip(allowed, inner))
                if best < 0 or part < best:
                    best, best_taken = part, these
            cost += best
            taken.extend(best_taken)
        self.memo[key] = (cost, tuple(sorted(taken)))
        return cost

    def _emit(self, node: _Node, cls: Span, covered: tuple[Span, ...], chosen: list[tuple[_Node, Span]]) -> None:
        """The rules of the minimum _best found: a half's class that is worth the same whatever is taken is
        emitted as _best priced it, given what was covered before anything was taken (a cover all the same)."""
        if node.segment is not None:
            if not _inside(covered, cls):
                chosen.append((node, cls))
            return
        held = node.classes[cls]
        _, taken = self.memo[(id(node), cls, covered)]
        chosen.extend((node, c) for c in held.forced)
        chosen.extend((node, c) for c in taken)
        base = tuple(_join(merge(covered, held.forced), touching=True))
        allowed = tuple(_join(merge(base, taken), touching=True))
        for half, inner in held.inside:
            given = _clip(allowed, inner)
            if half.segment is None and (id(half), inner, given) not in self.memo:
                given = _clip(base, inner)
            self._emit(half, inner, given, chosen)

    def _guess(self, node: _Node, cls: Span, covered: tuple[Span, ...], chosen: list[tuple[_Node, Span]]) -> None:
        """A cover of the class without search: an option is taken when both halves need some of it."""
        if node.segment is not None:
            if not _inside(covered, cls):
                chosen.append((node, cls))
            return
        held = node.classes[cls]
        taken = [c for c in held.free if not _inside(covered, c) and all(_meets(h.needed, c) for h in node.halves)]
        chosen.extend((node, c) for c in held.forced)
        chosen.extend((node, c) for c in taken)
        allowed = tuple(_join(merge(covered, held.forced, taken), touching=True))
        for half, inner in held.inside:
            self._guess(half, inner, _clip(allowed, inner), chosen)

    def _tagged(self, chosen: list[tuple[_Node, Span]]) -> Found:
        """The chosen rules with their port ranges and tags: the tags of the entries, over the segments a prefix
        meets, whose addresses meet it and whose ports meet its range (found by bisection among the prefix's
        ranges, which are disjoint: linear in the entries met, not in entries x rules)."""
        by_node: dict[int, tuple[_Node, list[Span]]] = {}
        for node, c in chosen:
            by_node.setdefault(id(node), (node, []))[1].append(c)
        result = []
        segments = self.problem.segments
        for node, spans in by_node.values():
            ports = sorted((self.cuts[lo], self.cuts[hi + 1] - 1) for lo, hi in spans)
            lasts = [last for _, last in ports]
            tags: list[set[Hashable]] = [set() for _ in ports]
            start, end = node.start, node.start + (1 << (32 - node.prefixlen)) - 1
            i = bisect_right(self.firsts, start) - 1
            while i < len(segments) and segments[i][0].first <= end:
                for entry in segments[i][0].entries:
                    if entry[0] > end or entry[1] < start:
                        continue
                    j = bisect_right(lasts, entry[2] - 1)  # the first range ending at or after the entry's start
                    while j < len(ports) and ports[j][0] <= entry[3]:
                        tags[j].add(entry[4])
                        j += 1
                i += 1
            result.extend((r, node.start, node.prefixlen, t) for r, t in zip(ports, tags, strict=True))
        return result
