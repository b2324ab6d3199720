"""Questions MCP servers ask during a turn (elicitation, sampling), and the user's answers."""

from __future__ import annotations

from fastapi import APIRouter, status

from orchestrator.api.conversations import ConversationId
from orchestrator.api.schemas import InteractionAnswer, InteractionOut, error_responses
from orchestrator.deps import CurrentCaller, State
from orchestrator.errors import InvalidInput
from orchestrator.loop.interactions import Answer, Pending, form_problem

router = APIRouter(prefix="/api/conversations", tags=["conversations"])
_errors = error_responses(401, 404, 409, 422)


@router.get("/{conversation_id}/interactions", responses=_errors)
async def waiting_interactions(
    state: State, caller: CurrentCaller, conversation_id: ConversationId
) -> list[InteractionOut]:
    """Questions waiting for the caller's answer in this conversation (also announced on the turn's stream)."""
    return [_out(pending) for pending in state.runner.interactions.waiting(caller.user.id, conversation_id)]


@router.post(
    "/{conversation_id}/interactions/{interaction_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_errors
)
async def answer_interaction(
    state: State, caller: CurrentCaller, conversation_id: ConversationId, interaction_id: str, body: InteractionAnswer
) -> None:
    """Answer a server's question: ``accept`` (with ``content`` for a form), ``decline`` or ``cancel``.

    A sign-in (``authorization``) is only declined or cancelled here: it ends by itself once the user signed in.
    """
    pending = next(
        (p for p in state.runner.interactions.waiting(caller.user.id, conversation_id) if p.id == interaction_id), None
    )
    if pending is not None and body.action == "accept" and pending.details.get("mode") == "form":
        problem = form_problem(pending.details.get("requested_schema"), body.content)
        if problem is not None:
            raise InvalidInput(problem)
    if pending is not None and body.action == "accept" and pending.kind == "authorization":
        raise InvalidInput(
            "a sign-in ends by itself when the server's sign-in page sends you back; decline or cancel it"
        )
    state.runner.interactions.answer(caller.user.id, conversation_id, interaction_id, Answer(body.action, body.content))


def _out(pending: Pending) -> InteractionOut:
    return InteractionOut(id=pending.id, kind=pending.kind, details=dict(pending.details))
