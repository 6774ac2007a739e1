"""Whether a caller agreed to be recorded (pure): only a clear yes counts.

A yes word with no negation anywhere in the answer is a yes; everything else is not:
"no", "yes, no, wait", "not now", a question back, silence, an answer about something else. Keypad 1 is yes, any other key
is no (the controller decides the keys; this is the spoken answer).
"""

from __future__ import annotations

import re

_YES = {
    "en": r"\b(yes|yeah|yep|yup|sure|ok|okay|fine|certainly|of course|go ahead|agreed|i agree|"
          r"i consent|you may|that'?s fine|alright|all right)\b",
    "de": r"\b(ja|jawohl|jo|gerne?|einverstanden|ok|okay|klar|natürlich|sicher|"
          r"in ordnung|ist gut|geht klar|passt|dürfen sie)\b",
}
_NO = {
    "en": r"\b(no|not|nope|nah|don'?t|do not|never|rather not|stop|wait)\b|n't\b|\?",
    "de": r"\b(nein|nicht|nö|nee|kein|keine|keinen|niemals|lieber nicht|auf keinen fall|"
          r"warten sie|moment)\b|\?",
}


def consent_answer(text: str, language: str) -> str:
    """"yes" (a clear yes), "no" (a no, or a yes taken back), or "other": the caller said
    something else, such as their question, which is then no consent but still a turn."""
    said = (text or "").lower()
    language = language if language in _YES else "en"
    if re.search(_NO[language], said):
        return "no"
    return "yes" if re.search(_YES[language], said) else "other"


def consent_from_speech(text: str, language: str) -> bool:
    return consent_answer(text, language) == "yes"


def consent_from_key(digit: str) -> bool:
    return digit == "1"
