"""Adding a handler needs only a decorated function: the dialogue routes to it unchanged."""

from __future__ import annotations

from app.bank.seed import seed
from app.bank.service import BankService
from app.conversation.dialogue import DialogueManager, TurnInput
from app.core.settings import get_settings
from app.conversation.frame import DialogueState
from app.conversation.understand import Understanding
from models.acts import ActPrediction
from handlers.base import Reply, Risk, Slot, SlotError
from handlers.registry import all_handlers, get_handler, handler

EXPECTED = {"Check_Balance", "Fund_Transfer", "Open_Account", "Loan_Enquiry", "Card_Block", "Branch_Location",
            "FAQ", "Human_Handoff", "Greeting", "Goodbye", "Out_Of_Scope"}


def test_every_product_handler_is_registered():
    assert EXPECTED <= set(all_handlers())


def test_high_risk_handlers_confirm_and_need_auth():
    for spec in all_handlers().values():
        if spec.risk is Risk.HIGH:
            assert spec.confirm is not None and spec.requires_auth, spec.intent


def _even(value, ctx):
    if int(value) % 2:
        raise SlotError("That number is odd.")
    return int(value)


@handler("Test_Echo", slots=(Slot("number", prompt="Which even number?", free_text=True, validator=_even),),
         description="echo an even number")
def _echo(ctx):
    return Reply(f"You said {ctx.slots['number']}.")


def test_new_handler_is_routed_with_slot_validation(fresh_home):
    settings = get_settings()
    seed(settings.db_url)
    dm = DialogueManager(settings, BankService(settings.db_url))
    state = DialogueState()

    def say(text: str, intent: str = "Test_Echo", confidence: float = 0.95, act: str = "request"):
        u = Understanding(text=text, model_text=text, language="en", context=state.context(), task=intent,
                          confidence=confidence, ranking=[(intent, confidence)], label=intent,
                          act=ActPrediction(act, 0.99, ((act, 0.99),)))
        return dm.turn(state, TurnInput("s1", None, None, text, u, {}, []))

    assert get_handler("Test_Echo") is not None
    out = say("echo please")
    assert out.state == "awaiting_slot" and "even number" in out.reply
    out = say("3", intent="Out_Of_Scope", confidence=0.2, act="inform")
    assert out.state == "awaiting_slot" and "odd" in out.reply
    out = say("4", intent="Out_Of_Scope", confidence=0.2, act="inform")
    assert out.state == "done" and out.reply == "You said 4."


def test_the_readme_example_handler_works_unchanged(fresh_home, monkeypatch):
    """The README's "Adding a handler" code, executed as written, is registered and routed with its slot."""
    import re
    import types
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(# handlers/fd_rates\.py\n.*?)```", readme, re.S).group(1)
    from handlers import registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # the example leaves no handler behind
    module = types.ModuleType("handlers.fd_rates_from_readme")
    exec(compile(code, "README.md:handlers/fd_rates.py", "exec"), module.__dict__)  # noqa: S102 - our own README
    assert get_handler("FD_Quote") is not None
    settings = get_settings()
    seed(settings.db_url)
    dm = DialogueManager(settings, BankService(settings.db_url))
    state = DialogueState()

    def say(text: str, intent: str, confidence: float, act: str):
        u = Understanding(text=text, model_text=text, language="en", context=state.context(), task=intent,
                          confidence=confidence, ranking=[(intent, confidence)], label=intent,
                          act=ActPrediction(act, 0.99, ((act, 0.99),)))
        return dm.turn(state, TurnInput("s-readme", None, None, text, u, {}, []))

    out = say("what is the fd rate", "FD_Quote", 0.95, "request")
    assert out.state == "awaiting_slot" and "how many years" in out.reply.lower()
    out = say("15 years", "Out_Of_Scope", 0.2, "inform")
    assert out.state == "awaiting_slot" and "1 to 10 years" in out.reply
    out = say("5 years", "Out_Of_Scope", 0.2, "inform")
    assert out.state == "done" and out.reply == "For 5 years our FD rate is 6.75% a year."
