"""The planner's search (``make_plan``): the token parallelism and every stage's folding
that meet a target II at the least cost, or the fastest plan that fits the board."""

from __future__ import annotations

import re

from ..errors import PlanError
from ..graph.graph import IntGraph
from ..graph.pipeline import Pipelining
from ..resources.board import KINDS, Board
from ..resources.memory import place_all
from ..resources.model import Resources, placed
from .build import build
from .fold import Folder, Option
from .plan import Offchip, Plan

TP_CHOICES = (1, 2, 4, 7, 8)
# Where the plan at an II misses the budget, each stage role (a stage of every block) tries
# its foldings that meet the II within this share of its cheapest one's cost: the stages'
# costs leave out the FIFOs their lanes imply, which can decide whether block RAM holds
NEAR_TIE = 0.05


def _tp_choices(graph: IntGraph) -> list[int]:
    """Every TP choice up to the token count: streams are padded to a multiple of it."""
    return [tp for tp in TP_CHOICES if tp <= graph.config.num_tokens]


def _over(r: Resources, board: Board) -> str:
    """The resources over the board's budget, as ``LUT 1,200 > 1,000``."""
    b = board.budget()
    return ", ".join(f"{k.upper()} {getattr(r, k):,.0f} > {b[k]:,}" for k in KINDS
                     if getattr(r, k) > b[k])


def _limit(plan: Plan) -> str:
    """What the plan exceeds, every condition of ``Plan.fits`` named."""
    over = [o for o in [_over(plan.resources, plan.board)] if o]
    if plan.ddr_bytes > plan.ddr_budget:
        over.append(f"DDR {plan.ddr_bytes:,} bytes an image > {plan.ddr_budget:,.0f}")
    if plan.ddr_regions and plan.ddr_region_bytes > plan.board.ddr.bytes:
        over.append(f"DDR regions {plan.ddr_region_bytes:,} bytes > the board's "
                    f"{plan.board.ddr.bytes:,}")
    return ", ".join(over) or "nothing (an unnamed limit: report it)"


def _stages_total(chosen: dict[str, Option], board: Board) -> Resources:
    """The stages' logic plus all their memories placed together (as ``build`` places
    them, FIFOs aside): a memory that cannot have a BRAM goes to LUTRAM while LUTs last."""
    used = sum((o.logic for o in chosen.values()), Resources())
    mems = [m for o in chosen.values() for m in o.memories]
    return sum((placed(*p, m) for p, m in zip(place_all(mems, board.budget(), {"lut": used.lut},
                                                           board.rom_in_uram), mems)), used)


def check_offchip(offchip: str, board: Board) -> Offchip:
    """``offchip`` as an ``Offchip``, if the board allows it."""
    try:
        mode = Offchip.parse(offchip, "offchip")
    except ValueError as e:
        raise PlanError(str(e)) from None
    if mode is Offchip.ALL and board.ddr is None:
        raise PlanError(f"offchip=all: board {board.name} has no ddr section")
    return mode


def make_plan(graph: IntGraph, board: Board, *, target_ii: int | None = None,
              target_fps: float | None = None, clock_mhz: float | None = None,
              model: str = "", tp: int | None = None, offchip: str = Offchip.AUTO,
              status: bool = False, progress=None) -> Plan:
    """The cheapest plan meeting the target II (or FPS at the clock), or by default the
    fastest plan that fits the board; coarse FIFOs in DDR per ``offchip`` (``build``);
    with ``status``, the status registers built and costed.
    Raises ``PlanError`` naming what limits it."""
    clock = clock_mhz or board.clock_mhz
    offchip = check_offchip(offchip, board)
    if target_ii is not None and target_fps is not None:
        raise PlanError("target: give --target-ii or --target-fps, not both")
    if target_fps is not None:
        if target_fps <= 0:
            raise PlanError(f"target_fps={target_fps}: expected a positive number")
        target_ii = int(clock * 1e6 // target_fps)
        if target_ii < 1:
            raise PlanError(f"target_fps={target_fps}: above one image per cycle at {clock} MHz")
    if target_ii is not None and target_ii < 1:
        raise PlanError(f"target_ii={target_ii}: expected a positive number of cycles")
    tps = [tp] if tp is not None else _tp_choices(graph)
    if tp is not None and not 1 <= tp <= graph.config.num_tokens:
        raise PlanError(f"tp={tp}: expected 1 to {graph.config.num_tokens} (the token count)")
    # Cost every TP's stages first (cheap), then build plans (each schedules images to
    # size the FIFOs) in order of their stage-only II, which no FIFO can lower: a TP whose
    # bound is already slower than the best plan is never built.
    cands, why = [], {}   # why: TP -> what stops it
    for t in tps:
        folder = Folder(graph, board, t, Pipelining.at(clock))
        if progress:
            progress(f"costing foldings at TP={t}")
        if target_ii is not None:
            chosen = folder.choose(target_ii)
            if chosen is None:
                slow = max(folder.fastest().items(), key=lambda kv: kv[1])
                why[t] = f"stage {slow[0]} needs at least {slow[1]:,} cycles"
                continue
            bound = max(o.cycles for o in chosen.values())
        else:
            bound = _stage_fit_ii(folder, board)
            if bound is None:
                cheapest = folder.choose(max(folder.candidate_iis()))
                over = _over(_stages_total(cheapest, board), board)
                why[t] = f"the cheapest foldings alone need {over}"
                continue
        cands.append((bound, t, folder))
    best = None
    cands.sort(key=lambda c: c[:2])
    # With a target, every TP meets it: the plan with the fewest LUTs wins. Without one,
    # two passes: each TP's plan at its own bound first (usually the answer), then a search
    # above the bound only for TPs whose bound is not above the best plan found; the
    # fastest wins, the fewest LUTs among equally fast ones.
    better = (lambda p: (p.resources.lut, p.ii)) if target_ii is not None else \
        (lambda p: (p.ii, p.resources.lut))
    for search in (False, True) if target_ii is None else (False,):
        for bound, t, folder in cands:
            if best is not None and target_ii is None and bound > best.ii:
                break
            if search and (t not in why or (best is not None and bound >= best.ii)):
                continue  # its plan at the bound fitted, or no faster one can exist
            if progress:
                progress(f"{'searching IIs' if search else 'sizing buffers'} at TP={t}")
            if target_ii is not None:
                plan = _built(folder, folder.choose(target_ii), target_ii, target_ii, model,
                              clock, offchip, status)
                if not plan.fits:
                    why[t] = f"it needs {_limit(plan)}"
                    continue
            elif not search:
                plan = _built(folder, folder.choose(bound), bound, None, model, clock, offchip,
                              status)
                if not plan.fits:
                    why[t] = f"the plan at II {bound:,} needs {_limit(plan)}"
                    continue
            else:
                plan = _fastest_fit(board, folder, bound, model, clock, offchip, status,
                                    below=None if best is None else best.ii)
                if plan is None:
                    why[t] += ", as do the next 16 IIs"
                    continue
            if best is None or better(plan) < better(best):
                best = plan
    if best is None:
        what = f"target II {target_ii:,} cycles cannot be met" if target_ii is not None \
            else "no plan fits"
        raise PlanError(f"{what} on {board.name}: "
                        + "; ".join(f"at TP={t} {w}" for t, w in why.items()))
    return best


def _excess(plan: Plan) -> float:
    """The plan's most used resource as a share of its budget (above 1: it does not fit)."""
    r, b = plan.resources, plan.board.budget()
    return max(getattr(r, k) / b[k] for k in KINDS if b[k])


def _role(name: str) -> str:
    return re.sub(r"^blocks\.\d+\.", "blocks.*.", name)


def _repaired(plan: Plan, folder: Folder, chosen: dict[str, Option], ii: int, make) -> Plan:
    """``plan`` (built by ``make(chosen)``) or, if it misses the budget by at most
    ``NEAR_TIE``, the first plan that fits, or else the least over, of those where one
    stage role at a time takes another near-tie folding: a descent, one role changed, then
    kept if better. A plan further over is left as it is: near ties will not save it."""
    if plan.fits or _excess(plan) > 1 + NEAR_TIE:
        return plan
    roles: dict[str, list[str]] = {}
    for name in chosen:
        roles.setdefault(_role(name), []).append(name)
    for names in roles.values():
        if plan.fits:
            break
        opts = folder.options[names[0]]
        best = chosen[names[0]].cost
        for alt in [o for o in opts if o.cycles <= ii and o.cost <= best * (1 + NEAR_TIE)
                    and o.folding != chosen[names[0]].folding]:
            trial = dict(chosen)
            for n in names:    # the roles' stages are alike: their options too
                trial[n] = next((o for o in folder.options[n] if o.folding == alt.folding),
                                trial[n])
            candidate = make(trial)
            if candidate.fits or _excess(candidate) < _excess(plan):
                plan, chosen = candidate, trial
                if plan.fits:
                    break
    return plan


def _stage_fit_ii(folder: Folder, board: Board) -> int | None:
    """The smallest achievable II whose stages fit the budget (each memory placed alone,
    FIFOs not counted): a binary search over the candidate IIs."""
    iis = folder.candidate_iis()
    budget = board.budget()

    def stages_fit(ii):
        # each stage at its cheapest (the gearboxes' trade only lowers the whole plan)
        chosen = folder.choose(ii, match_lanes=False)
        if chosen is None:
            return False
        total = _stages_total(chosen, board)
        return all(getattr(total, k) <= budget[k] for k in KINDS)
    lo, hi = 0, len(iis)
    while lo < hi:
        mid = (lo + hi) // 2
        if stages_fit(iis[mid]):
            hi = mid
        else:
            lo = mid + 1
    return iis[lo] if lo < len(iis) else None


def _fastest_fit(board, folder: Folder, bound: int, model: str, clock: float, offchip: str,
                 status: bool, below: int | None = None) -> Plan | None:
    """The first of the 16 IIs above the stage-only bound (and up to ``below``: an equally
    fast plan may take fewer LUTs) whose whole plan, FIFOs included, fits. A scan, not a search: where BRAM binds, a slower II's
    narrower, deeper memories can pack worse, so fitting is not monotonic in the II."""
    for ii in [ii for ii in folder.candidate_iis()
               if bound < ii and (below is None or ii <= below)][:16]:
        plan = _built(folder, folder.choose(ii), ii, None, model, clock, offchip, status)
        if plan.fits:
            return plan
    return None


def _built(folder: Folder, chosen: dict[str, Option], ii: int, target_ii: int | None,
           model: str, clock: float, offchip: str, status: bool) -> Plan:
    """The plan of ``chosen`` at ``ii``, repaired where it misses the budget."""
    def make(ch):
        return build(folder.graph, folder.board, folder.tp, ch, target_ii, model, clock,
                     offchip, status)
    return _repaired(make(chosen), folder, chosen, ii, make)
