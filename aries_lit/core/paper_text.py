"""The paper's refinement-template text (arXiv 2502.05605, Appendix B.1), verbatim.

Neutral layer: ``aries_lit.prompts.templates`` builds the refinement templates from it, and
``aries_lit.models.tiny`` trains the tiny test tokenizer on it (``models`` may not import
``prompts``).
"""

#: Appendix B.1's opening, shared by the paper template and the Appendix E ANALYSIS variant.
PAPER_INTRO = (
    "Below is a QUESTION from a user and an EXAMPLE RESPONSE. Please provide a more helpful RESPONSE, "
    "improving the EXAMPLE RESPONSE by making the content even clearer, more accurate, and concise. "
    "Focus on addressing the human's QUESTION without including irrelevant sentences. Your RESPONSE "
    "should not only be well-written, logical, and easy-to-follow, but also demonstrate expert-level "
    "insight, engaging the reader with the most relevant information.\n"
    "QUESTION:\n{question}\n"
    "EXAMPLE RESPONSE:\n{example_response}\n"
    "Now, refine and improve the RESPONSE further. You can consider two approaches: 1. REFINEMENT: If "
    "the EXAMPLE RESPONSE is sufficient and addresses most of the QUESTION's concerns, enhance clarity, "
    "accuracy, or conciseness as needed. 2. NEW RESPONSE: If the EXAMPLE RESPONSE lacks clarity or "
    "relevance to the QUESTION, craft a more effective RESPONSE that thoroughly resolves the QUESTION.\n"
)

#: Appendix B.1 of arXiv 2502.05605 (the paper's ``z``), verbatim.
PAPER_TEMPLATE = PAPER_INTRO + "Do not include analysis-just give the improved RESPONSE.\nRESPONSE:"

__all__ = ["PAPER_INTRO", "PAPER_TEMPLATE"]
