"""Pure translations between the wire formats tollway speaks and its one internal shape.

The gateway only knows OpenAI chat completions (requests, bodies, stream chunks). Each module
here maps one other protocol to and from that shape — requests, responses, stop reasons, usage
and stream events — with no I/O, so every mapping is unit-testable on its own.
"""
