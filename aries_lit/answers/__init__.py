"""Answer checking for tasks with a known gold answer, shared by selection and evaluation.

``extraction``: the final-answer extraction cascade and numeric comparison; ``checking``: whether a
text answers its gold, with the ``builtin`` or ``math_verify`` checker. It sits above ``prompts``
(GSM8K's gold answers) and below the ``selectors`` (the ``verifier`` selector) and ``evaluation``
(verifiable tasks), so both grade answers with the same code.
"""
