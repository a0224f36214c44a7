"""The promptsource templates that cannot render, or render empty on, the
synthetic records of tests/test_p3_templates.py, listed by name so that a
change in either list fails the test."""

# Templates whose jinja cannot render a synthetic record (the answer looked up
# with `.index`, numbers compared with text, ...): by dataset.
NEEDS_REAL_DATA = {
    "Zaid/coqa_expanded": ("extract_answer",),
    "ai2_arc/ARC-Challenge": (
        "i_am_hesitating", "multiple_choice", "pick_false_options",
        "qa_options",
    ),
    "ai2_arc/ARC-Easy": (
        "i_am_hesitating", "multiple_choice", "pick_false_options",
        "qa_options",
    ),
    "cbt/raw": (
        "Given Author Recommend Book", "Given Story Write Title",
        "Given Title Guess Author", "Who wrote",
    ),
    "climate_fever": ("fifth_evidence_and_claim_itemization",),
    "commonsense_qa": (
        "answer_given_question_without_options", "most_suitable_answer",
        "question_answering",
    ),
    "conv_ai": ("engagement_question_after", "engagement_question_before"),
    "coqa": ("extract_answer_first_qa_turn",),
    "cos_e/v1.0": (
        "description_question_option_id", "question_description_option_id",
        "question_option_description_id",
    ),
    "cos_e/v1.11": (
        "description_question_option_id", "question_description_option_id",
        "question_option_description_id",
    ),
    "craigslist_bargains": (
        "best deal", "gap between parties", "good deal for seller",
        "good deal for seller no list price",
        "good deal for seller no list price implicit",
    ),
    "discofuse/discofuse-sport": (
        "grammar_detection_bottom", "grammar_detection_top",
    ),
    "discofuse/discofuse-wikipedia": (
        "grammar_detection_bottom", "grammar_detection_top",
    ),
    "docred": ("entity-and-relation-to-text", "relation"),
    "freebase_qa": (
        "inference_chain_prompt_context", "qa_context_1", "qa_context_2",
        "qa_template_basic",
    ),
    "humicroedit/subtask-1": (
        "best_shot_rate_original_sent_edited_sent",
        "example_score_original_sent_edited_sent_interrogative",
        "know_funniness_original_sent_edit_word",
        "know_funniness_original_sent_edited_sent",
        "score_original_sent_edit_word",
        "score_original_sent_edit_word_low_high",
    ),
    "humicroedit/subtask-2": (
        "only_edited_sentences_QA_id", "only_edited_sentences_QA_text",
        "only_edited_sentences_id", "original_sent_edit_words_qa_id",
        "original_sent_edit_words_qa_strategy",
        "original_sent_edit_words_qa_strategy_id",
        "original_sent_edited_sentences_qa",
        "original_sent_edited_sentences_qa_id",
    ),
    "kilt_tasks/nq": (
        "first_person_context", "formal_description", "guess_question",
        "question_answer", "question_with_instruction", "search query",
    ),
    "math_dataset/algebra__linear_1d_composed": (
        "simple_template_question_one_sentence",
        "simple_template_question_one_sentence_extract_variable_name_v2",
        "simple_template_question_one_sentence_extracting_variable_name",
        "simple_template_question_one_sentence_v2",
    ),
    "math_dataset/algebra__linear_2d_composed": (
        "simple_template_question_one_sentence",
        "simple_template_question_one_sentence_extract_variable_name_v2",
        "simple_template_question_one_sentence_extracting_variable_name",
        "simple_template_question_one_sentence_v2",
    ),
    "ncbi_disease": (
        "identify_diseases_names_mentioned", "list_diseases_mentioned",
        "list_diseases_mentioned_after_text",
        "question_asking_diseases_presence",
        "question_asking_diseases_presence_after_text",
        "simple_question_asking_response_as_text",
        "simple_question_asking_response_as_text_after_text",
    ),
    "nlu_evaluation_data": (
        "what_service_talk_about", "what_service_talk_about_choices",
    ),
    "piqa": (
        "Correct the solution if false: from sol 1",
        "Correct the solution if false: from sol 2", "no prompt needed",
    ),
    "quartz": (
        "answer_question_based_on", "answer_question_below",
        "given_the_fact_answer_the_q", "having_read_above_passage",
        "paragraph_question_plain_concat", "read_passage_below_choose",
        "use_info_from_paragraph_question", "use_info_from_question_paragraph",
    ),
    "riddle_sense": (
        "answer_given_question_without_options", "most_suitable_answer",
        "question_answering",
    ),
    "selqa/answer_selection_analysis": (
        "make-sense-rand", "would-make-sense-qu-rand",
    ),
    "species_800": (
        "affirmative_bottom_list", "affirmative_bottom_string",
        "affirmative_top_list", "affirmative_top_string",
        "interrogative_bottom_list", "interrogative_bottom_string",
        "interrogative_top_list", "interrogative_top_string",
    ),
    "super_glue/wsc.fixed": ("I think they mean", "in other words"),
}

# Templates that render an empty input or target on every synthetic record
# (their jinja keeps only records with particular values): by dataset.
EMPTY_ON_SYNTHETIC = {
    "acronym_identification": ("acronyms_and_expansions_bio_encode",),
    "asset/simplification": (
        "choose-simplification", "choose-verbose", "simplification-to-verbose",
        "verbose-to-simplification", "verbose-to-simplification-implicit",
    ),
    "conv_ai": (
        "engagement_alice_interested", "engagement_alice_really",
        "engagement_bob_interested", "engagement_bob_real",
    ),
    "conv_ai_2": (
        "match_profile", "match_profile_agree", "match_profile_expected",
        "match_profile_guess", "match_profile_question",
    ),
    "conv_ai_3": ("generate_clarif_question",),
    "docred": (
        "find-all-locations", "find-all-numbers", "find-all-organizations",
        "find-all-people", "find-all-times", "type-to-entity",
    ),
    "duorc/ParaphraseRC": (
        "build_story_around_qa", "generate_question_by_answer",
    ),
    "duorc/SelfRC": ("build_story_around_qa", "generate_question_by_answer"),
    "e2e_nlg_cleaned": (
        "area_qa", "eat_type_qa", "family_friendly_yes_no", "food_qa",
        "name_qa", "near_qa", "price_range_qa", "rating_qa",
    ),
    "fever/v1.0": (
        "cbqa_fever_dialog_style_postprompt_all_class",
        "cbqa_fever_dialog_style_surrounded_all_class",
        "cbqa_fever_postprompt", "cbqa_fever_preprompt", "cbqa_fever_short",
    ),
    "fever/v2.0": (
        "cbqa_fever_dialog_style_postprompt_all_class",
        "cbqa_fever_dialog_style_surrounded_all_class",
        "cbqa_fever_postprompt", "cbqa_fever_preprompt", "cbqa_fever_short",
    ),
    "great_code": ("function name generation",),
    "head_qa/en": (
        "multiple_choice_a_and_q_en",
        "multiple_choice_a_and_q_with_context_en",
        "multiple_choice_q_and_a_en",
        "multiple_choice_q_and_a_with_context_en",
    ),
    "hotpot_qa/distractor": (
        "generate_explanations_affirmative",
        "generate_explanations_interrogative",
    ),
    "hotpot_qa/fullwiki": (
        "generate_explanations_affirmative",
        "generate_explanations_interrogative",
    ),
    "kilt_tasks/hotpotqa": (
        "combining_facts", "complex_question", "final_exam", "formulate",
        "straighforward_qa",
    ),
    "kilt_tasks/nq": ("question_with_multiple_answer",),
    "limit": ("first_moving_entity", "last_moving_entity"),
    "mdd/task3_qarecs": (
        "next_utterance_4_for_6", "recommend_movie_second_round",
        "recommend_movie_second_round_with_context",
    ),
    "narrativeqa": (
        "answer_using_summary_full_text", "full_text_question_answer",
        "given_summary_answer_text", "given_text_answer_question",
        "summary_answer_query",
    ),
    "openai_humaneval": ("function call return value generation",),
    "openbookqa/additional": (
        "choices", "choose_an_answer_with_options", "only_options",
        "pick_answer_with_options", "which_correct", "which_correct_inverse",
    ),
    "openbookqa/main": (
        "choices", "choose_an_answer_with_options", "only_options",
        "pick_answer_with_options", "which_correct", "which_correct_inverse",
    ),
    "qasc": (
        "qa_with_combined_facts_1", "qa_with_separated_facts_1",
        "qa_with_separated_facts_2", "qa_with_separated_facts_3",
        "qa_with_separated_facts_4", "qa_with_separated_facts_5",
    ),
    "qed": ("closed-book-qa", "open-book-qa"),
    "quora": ("rephrase_given_question",),
    "race/all": (
        "Read the article and answer the question (no option)",
        "Select the best answer (generate span)",
    ),
    "race/high": (
        "Read the article and answer the question (no option)",
        "Select the best answer (generate span)",
    ),
    "race/middle": (
        "Read the article and answer the question (no option)",
        "Select the best answer (generate span)",
    ),
    "scientific_papers/arxiv": (
        "write_sentences_4_and_5_from_sentences_1_2_3_and_abstract",
    ),
    "scientific_papers/pubmed": (
        "write_sentences_4_and_5_from_sentences_1_2_3_and_abstract",
    ),
    "sick": ("A entails B?", "A entails_neutral_contradict B?"),
    "social_i_qa": ("Show choices and generate index",),
    "subjqa/books": ("domain_q", "domain_q_after_context"),
    "subjqa/electronics": ("domain_q", "domain_q_after_context"),
    "subjqa/grocery": ("domain_q", "domain_q_after_context"),
    "subjqa/movies": ("domain_q", "domain_q_after_context"),
    "subjqa/restaurants": ("domain_q", "domain_q_after_context"),
    "subjqa/tripadvisor": ("domain_q", "domain_q_after_context"),
    "trec": (
        "fine_grained_ABBR", "fine_grained_ABBR_context_first",
        "fine_grained_HUM", "fine_grained_HUM_context_first",
        "fine_grained_LOC", "fine_grained_LOC_context_first",
        "fine_grained_NUM", "fine_grained_NUM_context_first",
    ),
    "turk": (
        "choose-simplification", "choose-verbose", "make-verbose", "simplify",
    ),
    "tydiqa/secondary_task": (
        "can_you_answer_the_question", "can_you_tell_me_the_answer",
        "end_to_end_question_generation",
        "end_to_end_question_generation_with_title", "extract_answer",
        "simple_question_odqa", "testing_students", "title_generation",
        "whats_the_answer",
    ),
    "wiki_hop/masked": (
        "Indirect Question about Birthplace / Citizenship / Place of Death",
    ),
    "wiqa": (
        "does_the_supposed_perturbation_have_an_effect",
        "which_of_the_following_is_the_supposed_perturbation",
    ),
}
