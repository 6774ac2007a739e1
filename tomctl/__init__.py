"""TOM: an on-premises realtime AI phone assistant for FreeSWITCH."""

import os

__version__ = "0.1.0"

# llama.cpp and CTranslate2 run their threads through OpenMP, whose threads spin at every
# barrier by default. When a job computes with more than one thread (over 4 cores, see
# speech/scheduling.py) and anything else on the machine takes one of its cores, the others
# spin for a whole time slice at each of the hundreds of barriers a token has. Measured with
# two busy processes beside a two-thread SmolLM2: 32 tokens in 1.2 to 91 s spinning, 0.7 s
# sleeping. Set before either library loads, as their runtimes read it once; an operator's
# own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
