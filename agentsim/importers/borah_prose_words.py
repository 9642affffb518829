"""The words and patterns the rules of :mod:`agentsim.importers.borah_prose` recognise in a
prose scene: openers, need-verbs, connectives, sentence ends, word classes, fixed pairs; and
:func:`clean`, the last touch of every task text.
"""

from __future__ import annotations

import re

TASK_COUNT = 4
MAX_CANDIDATES = 40  # weak cuts considered per scene (C(40, 3) = 9880 choices at most)

OPENER_WORDS = (
    r"meanwhile|additionally|simultaneously|concurrently|also|elsewhere|furthermore|moreover|"
    r"besides|likewise|similarly|separately|finally|lastly|then|next|plus|in\s+addition|"
    r"at\s+the\s+same\s+time|in\s+the\s+meantime|on\s+top\s+of\s+that|on\s+the\s+other\s+hand|"
    r"after\s+that|at\s+once"
)
OPENER = re.compile(rf"^\s*(?:and\s+)?(?:{OPENER_WORDS})\b\s*,?\s*", re.I)
# A leading adverbial phrase ending in a comma ("During the broadcast, …"): its first word.
INTRO_WORDS = frozenset(
    "inside outside upstairs downstairs indoors outdoors nearby in at on during before after for "
    "with as while since ahead once when to across over around behind beyond near by throughout "
    "within under following because now today tonight tomorrow this later back out from amid "
    "amidst given despite until if whenever".split()
)
# Everything that names a need. Groups: exist(ential), part(iciple), verb.
NEED = re.compile(
    r"\b(?:"
    r"(?P<exist>there(?:'s|’s|\s+is|\s+are|\s+will\s+be)\s+(?:also\s+|still\s+)?(?:an?\s+)?"
    r"(?:[a-z\-]+\s+)?(?:need|requirement|call|demand)\s+(?:for|to))"
    r"|(?P<part>requiring|needing|calling\s+for|involving|necessitating|demanding)"
    r"|(?P<verb>(?:is|are)\s+(?:also\s+)?in\s+need\s+of|needs|need|requires|require|calls\s+for|"
    r"call\s+for|necessitates|necessitate|involves|involve|demands|demand|requested|asks\s+for|"
    r"ask\s+for|awaits|await|must|should|has\s+to|have\s+to|had\s+to|ought\s+to)"
    r")\b",
    re.I,
)
# What may follow a need-verb and belongs to the head: "needs to be", "needs someone to", "must be".
CONTINUATION = re.compile(
    r"(?:\s+(?:also|still|urgently))?"
    r"(?:\s+(?:someone|somebody|a\s+volunteer|volunteers|people|a\s+person|help)(?=\s+to\b))?"
    r"(?:\s+to(?:\s+be)?|\s+be)?\b",
    re.I,
)
RELATIVE = re.compile(r"\b(?:that|which|who|whose)\s+(?:also\s+|still\s+)?$", re.I)
AUX = re.compile(r"\b(?:is|are|was|were|will|has\s+been|have\s+been|gets|get)\b", re.I)
# "… are also necessary": a subject list with its predicate at the end.
TAIL = re.compile(
    r"\s+(?:is|are)\s+(?:also\s+|still\s+)?(?:necessary|needed|required|essential|important|"
    r"in\s+order|due|pending|urgent|called\s+for|on\s+the\s+(?:list|agenda))$",
    re.I,
)
VERB_NEXT = r",?\s+(?:needs|need|requires|require|must|has|have|is|are|wants|calls)\b"
STRONG = re.compile(
    r",?\s+as\s+well\s+as\s+|\s*;\s*(?:and\s+)?"
    # a comma before an opener, unless the opener sits inside a clause ("The hall, meanwhile,
    # needs")
    rf"|,\s*(?:and\s+)?(?=(?:{OPENER_WORDS})\b(?!{VERB_NEXT}))|,\s+and\s+(?:also\s+)?"
    r"|,\s+along\s+with\s+|,\s+together\s+with\s+|,\s+plus\s+|,\s+while\s+|,\s+whereas\s+",
    re.I,
)
GENERIC = re.compile(
    r"(?:some\s+|much\s+|extra\s+|urgent\s+)?(?:help|volunteers|hands|attention|work|"
    r"preparation|preparations|everyone|everybody)\b|(?:a\s+lot|lots|plenty)\s+of\b|"
    r"a\s+(?:hand|team)\b",
    re.I,
)
INNER_OPENER = re.compile(rf",\s*(?:{OPENER_WORDS}),\s*", re.I)
WEAK = re.compile(r"\s+(?:and|&|plus)\s+|,\s+(?!and\b)", re.I)
SENTENCE = re.compile(
    r"(?<!\bMr)(?<!\bMrs)(?<!\bMs)(?<!\bDr)(?<!\bSt)(?<!\bvs)(?<!\be\.g)(?<!\bi\.e)"
    r"[.!?]+[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])"
)
SOCIAL_TASK = re.compile(r"social\s+task\s*:", re.I)
SCENE = re.compile(r"\bscene\s*:", re.I)

DETERMINERS = frozenset(
    "a an the this that these those its their his her our my your some any all each every "
    "several two three four new".split()
)
PRONOUNS = frozenset("someone somebody everyone anyone people volunteers".split())
ING_NOUNS = frozenset(
    "thing something nothing anything everything ceiling morning evening spring string king ring "
    "wing sibling clothing bedding wedding stuffing icing frosting building lighting seating "
    "catering plumbing wiring flooring landscaping signing meeting offering awning railing "
    "roofing fencing".split()
)
PARTICLES = frozenset("up down out off in on over back together away around".split())
IRREGULAR = frozenset(
    "done built set made cut swept hung sewn written brought put laid taken given shown run kept "
    "sent bought drawn chosen fed sold told found held spread shut split lit paid read rebuilt "
    "redone rewritten mown sown ground wound strung undone".split()
)
NOT_PARTICIPLES = frozenset("shed bed red need seed feed weed breed sled hundred speed".split())
PREPOSITIONS = frozenset("of for in on at with from to by near around about into".split())
# Pairs that are one thing, not two tasks ("tables and chairs" stays splittable).
FIXED_PAIRS = frozenset(
    "up-running black-white odds-ends bits-pieces pros-cons arts-crafts salt-pepper food-drink "
    "food-drinks food-beverages foods-beverages rock-roll bread-butter fish-chips trial-error "
    "back-forth safe-sound first-foremost neat-tidy nice-tidy wear-tear lost-found health-safety "
    "research-development question-answer q-a hide-seek peace-quiet law-order".split()
)


def clean(text: str) -> str:
    """A task text tidied: whitespace collapsed, an inner opener and a leading "and"/"also"/"then"
    dropped, edge punctuation stripped, the first letter upper-case."""
    text = INNER_OPENER.sub(" ", " ".join(text.split())).strip(" ,;:.")
    text = re.sub(r"^(?:and|also|then)\s+", "", text, flags=re.I)
    return text[:1].upper() + text[1:]
