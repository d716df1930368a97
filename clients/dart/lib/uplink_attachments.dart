/// A [RemoteAttachmentStorage] for the PowerSync SDK's attachment queue,
/// backed by uplink's attachment routes:
///
///     POST   /api/attachments/upload-url        → {id, key, uploadUrl, method, headers, expiresAt}
///     POST   /api/attachments/{id}/complete     → {id, size, contentType}
///     GET    /api/attachments/{id}/download-url → {downloadUrl, expiresAt, contentType, size}
///     DELETE /api/attachments/{id}              → 204 (also when already gone)
///
/// The bytes go straight to storage (S3 or uplink's local store) with the
/// signed headers uplink returns; uplink only signs and records.
library;

import 'dart:convert';
import 'dart:typed_data';

import 'package:http/http.dart' as http;
import 'package:powersync_core/attachments/attachments.dart';

/// An error from uplink or from storage, with the HTTP status and uplink's
/// error code (`not_uploaded`, `forbidden`, `not_found`…).
class UplinkAttachmentError implements Exception {
  final String message;
  final int status;
  final String? code;
  UplinkAttachmentError(this.message, this.status, this.code);

  /// Retrying cannot fix these: the attachment is gone or not the user's.
  bool get isPermanent => status == 403 || status == 404;

  @override
  String toString() => 'UplinkAttachmentError($status, $code): $message';
}

class UplinkAttachmentStorage implements RemoteAttachmentStorage {
  final Uri baseUrl;

  /// A bearer token uplink accepts: pass `connector.token`, which shares
  /// the connector's cached PowerSync token (no token request per file).
  final Future<String> Function() getToken;
  final http.Client _http;

  UplinkAttachmentStorage({
    required String baseUrl,
    required this.getToken,
    http.Client? client,
  })  : baseUrl = Uri.parse(baseUrl.endsWith('/') ? baseUrl : '$baseUrl/'),
        _http = client ?? http.Client();

  @override
  Future<void> uploadFile(
      Stream<Uint8List> fileData, Attachment attachment) async {
    final bytes = BytesBuilder(copy: false);
    await for (final chunk in fileData) {
      bytes.add(chunk);
    }
    final body = bytes.takeBytes();
    final target = await _api('POST', 'api/attachments/upload-url', {
      'id': attachment.id,
      'filename': attachment.filename,
      // Without a media type uplink derives one from the filename's extension.
      if (attachment.mediaType != null) 'contentType': attachment.mediaType,
      'size': body.length,
    }) as Map<String, dynamic>;
    // Send the signed headers exactly; the client sets Content-Length itself.
    final signed = ((target['headers'] as Map?) ?? {}).cast<String, String>();
    final headers = {
      for (final MapEntry(:key, :value) in signed.entries)
        if (key.toLowerCase() != 'content-length') key: value,
    };
    final request = http.Request(
        (target['method'] as String?) ?? 'PUT',
        Uri.parse(target['uploadUrl'] as String))
      ..headers.addAll(headers)
      ..bodyBytes = body;
    final put = await _http.send(request);
    await put.stream.drain<void>();
    if (put.statusCode < 200 || put.statusCode >= 300) {
      throw UplinkAttachmentError(
          'storage refused the upload of ${attachment.id}', put.statusCode, null);
    }
    await _api('POST',
        'api/attachments/${Uri.encodeComponent(attachment.id)}/complete');
  }

  @override
  Future<Stream<List<int>>> downloadFile(Attachment attachment) async {
    final target = await _api('GET',
            'api/attachments/${Uri.encodeComponent(attachment.id)}/download-url')
        as Map<String, dynamic>;
    final response = await _http
        .send(http.Request('GET', Uri.parse(target['downloadUrl'] as String)));
    if (response.statusCode != 200) {
      await response.stream.drain<void>();
      throw UplinkAttachmentError('storage refused the download of '
          '${attachment.id}', response.statusCode, null);
    }
    return response.stream;
  }

  @override
  Future<void> deleteFile(Attachment attachment) async {
    await _api(
        'DELETE', 'api/attachments/${Uri.encodeComponent(attachment.id)}');
  }

  Future<Object?> _api(String method, String path,
      [Map<String, Object?>? body]) async {
    final request = http.Request(method, baseUrl.resolve(path))
      ..headers['Authorization'] = 'Bearer ${await getToken()}';
    if (body != null) {
      request
        ..headers['Content-Type'] = 'application/json'
        ..body = jsonEncode(body);
    }
    final response = await http.Response.fromStream(await _http.send(request));
    if (response.statusCode == 204) return null;
    Object? json;
    try {
      json = response.body.isEmpty ? null : jsonDecode(response.body);
    } on FormatException {
      json = null;
    }
    if (response.statusCode < 200 || response.statusCode >= 300) {
      final error = json is Map ? json['error'] as Map? : null;
      throw UplinkAttachmentError(
          '$method /$path: ${error?['message'] ?? 'HTTP ${response.statusCode}'}',
          response.statusCode,
          error?['code'] as String?);
    }
    return json;
  }
}

/// An [AttachmentErrorHandler] for uplink's answers: give up (archive) on
/// `403` and `404`, which retrying cannot fix; retry everything else,
/// including `409 not_uploaded` (the owner's device has not uploaded the
/// file yet) and `503`.
class UplinkAttachmentErrorHandler implements AttachmentErrorHandler {
  const UplinkAttachmentErrorHandler();

  bool _retry(Object exception) =>
      !(exception is UplinkAttachmentError && exception.isPermanent);

  @override
  Future<bool> onDownloadError(Attachment attachment, Object exception) async =>
      _retry(exception);

  @override
  Future<bool> onUploadError(Attachment attachment, Object exception) async =>
      _retry(exception);

  @override
  Future<bool> onDeleteError(Attachment attachment, Object exception) async =>
      _retry(exception);
}
