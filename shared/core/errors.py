"""One error hierarchy: each expected failure knows its HTTP status and a stable code."""


class AppError(Exception):
    status_code = 500
    code = "internal_error"
    headers: dict[str, str] | None = None
    # What a client is told when `message` holds details for operators only (hosts, paths,
    # exception texts): those go to the logs, never into a response.
    public_message: str | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def client_message(self) -> str:
        return self.public_message or self.message


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class InvalidState(AppError):
    """The request does not fit the state of what it is about (a resolved conversation, a
    suggestion already decided)."""

    status_code = 409
    code = "invalid_state"


class QuestionNotFound(AppError):
    status_code = 404
    code = "question_not_found"

    def __init__(self, question_id: str) -> None:
        super().__init__(f"no question with id {question_id!r}")


class ConversationNotFound(AppError):
    """Unknown — or not the caller's: another customer's conversation is not revealed."""

    status_code = 404
    code = "conversation_not_found"

    def __init__(self, conversation_id: str) -> None:
        super().__init__(f"no conversation with id {conversation_id!r}")


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"


class BrokerUnavailable(AppError):
    status_code = 503
    code = "broker_unavailable"


class QueueFull(AppError):
    """Too many questions are waiting; the client should come back later."""

    status_code = 503
    code = "queue_full"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after)}


class IdempotencyConflict(AppError):
    status_code = 409
    code = "idempotency_key_reused"


class LLMError(AppError):
    """The model backend answered, but not with a usable answer."""

    status_code = 500
    code = "llm_error"
    public_message = "the model backend failed to answer"
    transient = False


class LLMUnavailable(LLMError):
    """The model backend cannot be reached or is overloaded; worth retrying."""

    status_code = 503
    code = "llm_unavailable"
    public_message = "the model backend is unavailable; please try again later"
    transient = True


class ModelCannotRun(LLMUnavailable):
    """The configured model failed its start-up probe on this worker; retrying will not help."""

    public_message = "the model cannot run on this worker; an operator has to fix it"
    transient = False


class LLMTimeout(LLMUnavailable):
    code = "llm_timeout"
    public_message = "the model backend did not answer in time"


class LLMModelNotFound(LLMError):
    """The backend runs but lacks the configured model; retrying will not help."""

    status_code = 503
    code = "llm_model_not_found"
    public_message = "the configured model is not installed on the model backend"


class AnswerFailed(AppError):
    """A stored failure, rendered with the status its error code stands for."""

    def __init__(self, *, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status_code = STATUS_BY_CODE.get(code, 500)


STATUS_BY_CODE = {
    cls.code: cls.status_code for cls in (LLMError, LLMUnavailable, LLMTimeout, LLMModelNotFound)
}
