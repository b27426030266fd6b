"""Prompts that no prefix cache has seen: a different one per request and per run.

Token ids where the server takes them (ids below 256, which every vocabulary has; the first
two encode a counter, so no two prompts of a session share more than one token). Otherwise
text, common words, their token count checked against the server's usage block."""

from __future__ import annotations

import random

ID_LOW, ID_HIGH = 4, 256  # past the usual specials (pad, bos, eos, unk)
WORDS = (
    "time year people way day man thing woman life child world school state family student "
    "group country problem hand part place case week company system program question work "
    "government number night point home water room mother area money story fact month lot "
    "right study book eye job word business issue side kind head house service friend father "
    "power hour game line end member law car city community name president team minute idea "
    "kid body information back parent face others level office door health person art war "
    "history party result change morning reason research girl guy moment air teacher force "
    "education foot boy age policy music market sense nation plan college interest death "
    "experience effect use class control care field development role effort rate heart drug "
    "show leader light voice wife police mind price report decision son view relationship town "
    "road arm difference value building action model season society tax director position "
    "player record paper space ground form event official matter center couple site project "
    "activity star table need court oil situation cost industry figure street image phone data "
    "picture practice piece land product doctor wall patient worker news test movie north love"
).split()


class PromptMaker:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.counter = 0  # token-id prompts made this session (their first two ids)

    def token_ids(self, batch_size: int, input_len: int) -> list[list[int]]:
        span = ID_HIGH - ID_LOW
        out = []
        for _ in range(batch_size):
            n, self.counter = self.counter, self.counter + 1
            head = [ID_LOW + (n // span) % span, ID_LOW + n % span][:input_len]
            out.append(
                head + [self.rng.randrange(ID_LOW, ID_HIGH) for _ in range(input_len - len(head))]
            )
        return out

    def texts(self, batch_size: int, words: int) -> list[str]:
        return [" ".join(self.rng.choice(WORDS) for _ in range(words)) for _ in range(batch_size)]
