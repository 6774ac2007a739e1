"""What a caller's words ask for beyond an answer (pure).

Asking for a person is matched as a request *frame* (a request verb or modal together with a
person noun: "can I speak to someone", "verbinden Sie mich mit einem Mitarbeiter"), not as a
word list. The transfer is decided here, not by the LLM, which is not trusted with it; and a
single word fires on ordinary sentences ("the agent told me my order shipped", "ein Mitarbeiter
hat mir gesagt ..."). Speech verbs only count in the infinitive, so past-tense reports
("I spoke to", "ich habe ... gesprochen") do not transfer; a negation just before the frame
("I don't need to talk to a person", "ich will nicht mit ...") cancels it.
"""

from __future__ import annotations

import re

# Umlauts are folded to their two-letter spelling, so "möchte" and "moechte" read the same.
_FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "’": "'"})

_EN_DET = r"(?:(?:a|an|the|your|some|one of your|one of the) )?"
_EN_ADJ = r"(?:(?:real|actual|live|proper|human|sales|other|different|senior|competent) )?"
_EN_PERSON = (r"(?:someone|somebody|anyone|anybody|person|human(?: being)?|operator|agent|"
              r"representative|rep|manager|supervisor|colleague|employee|staff(?: member)?|"
              r"member of staff|boss|(?:shop |store )?owner|salesperson|specialist|expert|"
              r"advis[eo]r|customer (?:service|support)|service desk|mrs? \w+|ms \w+)"
              r"(?!'|\w)")
_EN_WHO = _EN_DET + _EN_ADJ + _EN_PERSON

_EN_FRAMES = [
    # "(can I / I'd like to / let me) speak to a person": base-form verb, so not "spoke"/"talked".
    rf"\b(?:speak|talk|chat) (?:\w+ )?(?:to|with) {_EN_WHO}",
    # "put me through", "transfer me", "connect me to the workshop": being moved is the ask.
    r"\b(?:put|patch|get) me through\b|\btransfer me\b|\b(?:connect|forward|pass) me (?:on |over )?(?:to|with)\b"
    r"|\b(?:be|get) (?:transferred|put through|connected) to\b",
    # "get me a human", "I want an operator", "can I have the operator", "I'd rather have a person".
    rf"\b(?:(?:get|give|find) me|(?:i|we) (?:want|need|wanna)|(?:i|we)(?:'d| would) (?:like|prefer|rather have)"
    rf"|(?:can|could|may) (?:i|we) (?:please )?(?:get|have)|let me have) (?:just |please |now )?{_EN_WHO}",
    # "is there someone I can talk to", "is anyone there I can speak with", "is there a human there".
    r"\bis (?:there|anyone|anybody|someone|somebody) (?:there )?(?:\w+ ){0,3}?(?:i|we) (?:can|could) "
    r"(?:talk|speak|chat)\b",
    rf"\bis there {_EN_DET}{_EN_ADJ}(?:person|human|someone|somebody|anyone|anybody) "
    r"(?:there|here|on the line|available)\b",
]
# The whole utterance is just who they want: "operator!", "agent", "a real person please".
_EN_ALONE = rf"(?:(?:please|just|hello|hi|yeah|yes|um|uh|ok|okay) )*(?:{_EN_WHO} ?)+(?: please| now)*"
# A negation ("I don't need to talk to ...") or a question about the past ("did you speak to ...").
_EN_NOT_ASKING = (r"(?:\b(?:don'?t|do not|doesn'?t|does not|didn'?t|did not|not|never|won'?t|no need)\b"
                  r"(?: (?:really|actually|even|need|want|wanna|have|got|to))*"
                  r"|\bdid (?:you|i|we|he|she|they)(?: ever| already)?)$")

_DE_DET = r"(?:(?:einen|einem|einer|eine|ein|den|dem|der|die|ihren|ihrem|ihrer|'?nen|'?nem|'?ner|'?ne) )?"
_DE_ADJ = r"(?:(?:echt|richtig|menschlich|lebendig|ander|zustaendig|kompetent|erfahren)e[nmr]? )?"
_DE_PERSON = (r"(?:jemand(?:en|em)?|mensch(?:en)?|\w*mitarbeiter(?:in|innen|n)?|kolleg(?:e|en|in)|"
              r"\w*berater(?:in)?|ansprechpartner(?:in)?|\w*verkaeufer(?:in)?|chef(?:in)?|"
              r"filialleiter(?:in)?|vorgesetzte[nr]?|person|fachmann|experten?|kunden(?:service|dienst)|"
              r"herrn? \w+|frau \w+)\b")
_DE_PLACE = r"(?:service|support|beratung|verkauf|werkstatt|teileabteilung|zentrale)\b"
_DE_WHO = _DE_DET + _DE_ADJ + _DE_PERSON

_DE_FRAMES = [
    # "(ich möchte / kann ich) mit einem Mitarbeiter sprechen": the infinitive, not "gesprochen".
    rf"\bmit {_DE_DET}{_DE_ADJ}(?:{_DE_PERSON}|{_DE_PLACE})(?:,? \w+){{0,7}}? "
    r"(?:sprechen|reden|telefonieren|verbinden|verbunden werden)\b",
    # "verbinden Sie mich", "stellen Sie mich ... durch", "durchstellen bitte".
    r"\bverbinden sie mich\b|\bstellen sie mich (?:\w+ ){0,5}?durch\b|\bleiten sie mich (?:\w+ ){0,5}?weiter\b"
    r"|\b(?:durchstellen|weiterverbinden)\b|\bmich (?:\w+ ){0,6}?(?:verbinden|durchstellen)\b",
    # "geben Sie mir einen Mitarbeiter", "ich will einen echten Menschen", "kann ich einen Berater sprechen".
    r"\b(?:geben sie mir|gib mir|holen sie mir|hol mir|ich (?:will|moechte|brauche|haette|wuerde)"
    r"|(?:kann|koennte|darf) ich)"
    rf"(?: (?:bitte|mal|gerne?|jetzt|sofort|lieber|doch|einfach|nur|direkt|endlich))* {_DE_WHO}",
    # "gibt es jemanden, mit dem ...", "ist da ein Mensch?".
    rf"\b(?:gibt es|ist da|ist dort|ist hier)(?: (?:noch|vielleicht|auch|bei ihnen))* {_DE_DET}{_DE_ADJ}"
    r"(?:jemand(?:en)?|mensch(?:en)?|\w*mitarbeiter(?:in)?|person|ansprechpartner|berater)\b",
    # "ein Mensch wäre mir lieber".
    rf"{_DE_WHO} (?:waere|ist) mir lieber\b",
    # "ich hätte gern mit jemandem gesprochen": the conditional is the one participle that asks.
    rf"\bhaette (?:(?:gerne?|lieber|bitte) )*mit {_DE_WHO}(?:,? \w+){{0,5}}? gesprochen\b",
]
# "Mitarbeiter bitte", "einen Menschen bitte", "Kundenservice bitte"; a bare "Mensch!" is an exclamation.
_DE_ALONE = (rf"(?!mensch$)(?:(?:hallo|ja|also|bitte) )*(?:mit )?(?:{_DE_WHO}|{_DE_PLACE})"
             r"(?: bitte| sofort| jetzt)*")
_DE_NOT_ASKING = r"\b(?:nicht|nie|kein\w*)(?: (?:unbedingt|wirklich|mehr|extra|gerne?))*$"

_LANGUAGES = {
    "en": ([re.compile(p) for p in _EN_FRAMES], re.compile(_EN_ALONE), re.compile(_EN_NOT_ASKING)),
    "de": ([re.compile(p) for p in _DE_FRAMES], re.compile(_DE_ALONE), re.compile(_DE_NOT_ASKING)),
}
# Sentences end at . ! ? ; but not after "Mr." and friends.
_SENTENCE_END = re.compile(r"(?<!\bmr)(?<!\bmrs)(?<!\bms)(?<!\bdr)[.;!?]", re.IGNORECASE)


def _normalise(text: str) -> str:
    """Lowercase, umlauts folded, punctuation gone except commas (which German clauses need)."""
    text = re.sub(r"[^\w',\s]", " ", text.lower().translate(_FOLD))
    return re.sub(r"\s+", " ", re.sub(r"\s*,\s*", ", ", text)).strip(" ,")


def wants_human(text: str, language: str) -> bool:
    frames, alone, not_asking = _LANGUAGES.get(language, _LANGUAGES["en"])
    for sentence in _SENTENCE_END.split(text):
        clause = _normalise(sentence)
        if clause and alone.fullmatch(clause.replace(",", "")):
            return True
        for frame in frames:
            for match in frame.finditer(clause):
                # Only words just before the frame, in its own sub-clause, can negate it.
                before = clause[: match.start()].rsplit(",", 1)[-1].strip()
                if not not_asking.search(before):
                    return True
    return False


# A caller taking leave: the whole utterance is a goodbye, perhaps with thanks around it
# ("okay, thanks, bye"; "danke, das war's, tschüss"), never a sentence that mentions one
# ("I said goodbye to my old car").
_GOODBYE = {
    "en": r"(?:(?:ok(?:ay)?|alright|all right|right|great|perfect|good|no|nope|yes|yeah)\s*)?"
          r"(?:(?:thanks?|thank you|cheers)(?: (?:so much|very much|a lot))?\s*)?"
          r"(?:(?:that'?s|that is|that was) (?:all|it|everything)(?: (?:i needed|for now))?\s*"
          r"|nothing else\s*)?"
          r"(?:(?:thanks?|thank you|cheers)(?: (?:so much|very much|a lot))?\s*)?"
          r"(?:(?:good ?)?bye(?: bye)?|see you|talk to you later|have a (?:nice|good|great) "
          r"(?:day|one|evening|weekend))?(?: (?:then|now))?\s*(?:(?:thanks?|thank you))?",
    "de": r"(?:(?:ok(?:ay)?|gut|alles klar|prima|super|ja|nein)\s*)?"
          r"(?:(?:danke|vielen dank|danke schoen)(?: schoen)?\s*)?"
          r"(?:(?:das war'?s|das wars|das war alles|das ist alles|sonst nichts|mehr nicht)\s*)?"
          r"(?:(?:danke|vielen dank|danke schoen)\s*)?"
          r"(?:tschuess|tschau|ciao|auf wiederhoeren|auf wiedersehen|wiederhoeren|bis dann"
          r"|schoenen tag(?: noch)?)?\s*(?:(?:danke))?",
}
_LEAVE_WORDS = {"en": r"\b(?:bye|goodbye|see you|talk to you later|have a (?:nice|good|great)|"
                      r"that'?s all|that is all|that was all|that'?s it|nothing else)\b",
                "de": r"(?:tschuess|tschau|ciao|wiederhoeren|wiedersehen|bis dann|schoenen tag|"
                      r"das war'?s|das wars|das war alles|das ist alles|sonst nichts)"}


def says_goodbye(text: str, language: str) -> bool:
    """The caller is done: the call may end (after the rating question, TOM_FEEDBACK)."""
    language = language if language in _GOODBYE else "en"
    clause = _normalise(text).replace(",", "")
    return bool(re.search(_LEAVE_WORDS[language], clause)) and \
        re.fullmatch(_GOODBYE[language], clause) is not None


_RATINGS = {"en": {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5},
            "de": {"eins": 1, "zwei": 2, "zwo": 2, "drei": 3, "vier": 4, "fuenf": 5}}


def spoken_rating(text: str, language: str) -> int | None:
    """A rating said instead of pressed ("five", "vier", "3"), if the answer is one."""
    words = _normalise(text).replace(",", "").split()
    numbers = _RATINGS.get(language, _RATINGS["en"])
    found = [numbers.get(word) or (int(word) if word in ("1", "2", "3", "4", "5") else None)
             for word in words]
    found = [value for value in found if value is not None]
    return found[0] if len(found) == 1 and len(words) <= 4 else None
